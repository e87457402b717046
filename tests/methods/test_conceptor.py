"""Conceptor-CAM: the conceptor algebra's laws and batched maps."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from camlab.methods.conceptor import (
    DEFAULT_APERTURE,
    conceptor,
    conceptor_and,
    conceptor_not,
    conceptor_or,
    weighted_correlation,
)
from tests.nets import TinyNet


def _random_conceptor(seed, k=6, aperture=2.0):
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(1, 40, k, generator=generator, dtype=torch.float64)
    states[:, :, -1] = 0  # a direction with no evidence makes the conceptors singular
    return conceptor(weighted_correlation(states, torch.rand(1, 40, generator=generator, dtype=torch.float64)), aperture)


def test_conceptor_algebra_laws():
    a, b = _random_conceptor(0), _random_conceptor(1)
    values = torch.linalg.eigvalsh(a)
    assert (values >= -1e-12).all() and (values < 1).all()
    assert torch.allclose(conceptor_not(conceptor_not(a)), a)
    assert torch.allclose(conceptor_and(a, b), conceptor_and(b, a), atol=1e-8)
    assert torch.allclose(conceptor_not(conceptor_and(a, b)), conceptor_or(conceptor_not(a), conceptor_not(b)), atol=1e-8)
    and_values = torch.linalg.eigvalsh(conceptor_and(a, b))
    assert (and_values >= -1e-8).all() and (and_values < 1).all()
    assert (and_values.max() <= torch.minimum(values.max(), torch.linalg.eigvalsh(b).max()) + 1e-6)


def test_conceptor_cams_run_batched_and_match_per_image_results():
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    names = ["conceptorcam", "conceptor-gradcam", "conceptor-hirescam"]
    batched = camlab.explain(model, images, names, target_layer="relu2")
    for i in range(3):
        single = camlab.explain(model, images[i : i + 1], names, target_layer="relu2", targets=batched.classes[i : i + 1])
        for name in names:
            assert torch.allclose(batched[name].raw[i], single[name].raw[0], atol=1e-6)
    evidence = batched["conceptorcam"].raw
    assert (evidence >= 0).all() and (evidence <= 1).all() and evidence.std() > 0


def test_the_aperture_is_an_option_of_explain():
    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16)
    default = camlab.explain(model, images, ["conceptorcam"], target_layer="relu2")["conceptorcam"].raw
    same = camlab.explain(model, images, ["conceptorcam"], target_layer="relu2",
                          options={"conceptorcam": {"aperture": DEFAULT_APERTURE}})["conceptorcam"].raw
    other = camlab.explain(model, images, ["conceptorcam"], target_layer="relu2",
                           options={"conceptorcam": {"aperture": 8 * DEFAULT_APERTURE}})["conceptorcam"].raw
    assert torch.equal(default, same) and not torch.allclose(default, other)
    with pytest.raises(CamlabError, match="aperture must be a positive number"):
        camlab.explain(model, images, ["conceptorcam"], target_layer="relu2", options={"conceptorcam": {"aperture": 0}})
