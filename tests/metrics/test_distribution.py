"""The in-distribution check: perturbed versions of each image and plain warnings."""
import torch

from camlab.metrics.distribution import PERTURBATIONS, distribution_readouts, distribution_warnings, modal_share
from tests.nets import TinyNet


def test_every_perturbation_is_scored_per_image_in_one_pass():
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    found = distribution_readouts(model, images, torch.tensor([0, 1, 2]))
    assert set(found) == {f"{p}_{k}" for p in ("p", "class") for k in ("clean", *PERTURBATIONS)}
    assert all(v.shape == (3,) for v in found.values())
    assert modal_share(found["class_black"]) == 1.0  # three black images are one image


def test_warnings_name_a_collapse_and_a_black_image_that_keeps_its_confidence():
    calm = {"modal_share_clean": 0.2, "modal_share_masked": 0.3, "modal_share_darkened": 0.2, "modal_share_blur": 0.25,
            "p_clean": 0.9, "p_black": 0.1}
    assert distribution_warnings(calm) == []
    collapsed = distribution_warnings({**calm, "modal_share_masked": 0.95})
    assert len(collapsed) == 1 and "95% of the images become one class" in collapsed[0]
    black = distribution_warnings({**calm, "p_black": 0.6})
    assert len(black) == 1 and "on a black image the explained class's confidence is 0.60" in black[0]
    assert distribution_warnings({**calm, "modal_share_clean": 0.95, "modal_share_masked": 0.95}) == []  # one-class data


def test_roads_check_fills_half_the_pixels_by_imputation_and_keeps_the_rest():
    from camlab.metrics.distribution import perturbed

    images = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    imputed = perturbed(images, "imputed", seed=3)
    kept = (imputed == images).all(1)  # the noise touches only the filled pixels
    assert kept.flatten(1).sum(1).tolist() == [288, 288]  # exactly half of 576 kept
    assert torch.equal(imputed, perturbed(images, "imputed", seed=3))  # seeded
    assert not torch.equal(kept, (perturbed(images, "imputed", seed=4) == images).all(1))
    # filled from the neighbours: within the kept values' range, up to ROAD's noise
    assert imputed.min() > images.min() - 0.06 and imputed.max() < images.max() + 0.06
    calm = {"modal_share_clean": 0.2, "modal_share_imputed": 0.96, "p_clean": 0.9, "p_black": 0.1}
    assert "ROAD" in distribution_warnings(calm)[0] and "half its pixels" in distribution_warnings(calm)[0]
