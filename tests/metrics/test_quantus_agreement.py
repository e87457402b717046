"""camlab's metrics against Quantus 0.6 where both define the same thing, on maps without ties
(Quantus orders tied values with numpy's unstable argsort; camlab averages over random orders, so
on ties the two are meant to differ: the test below says where)."""
import numpy as np
import pytest
import torch
from torch import nn

from camlab.metrics.controls import tie_ranks
from camlab.metrics.faithfulness import insertion_deletion
from camlab.metrics.leakage import localisation

quantus = pytest.importorskip("quantus")


@pytest.fixture
def trapz(monkeypatch):
    """Quantus 0.6 integrates with ``np.trapz``, which numpy 2.4 removed; the same rule under its new name."""
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def tie_free(count: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    maps = generator.random((count, size, size)).astype(np.float32)
    masks = np.zeros((count, size, size), dtype=bool)
    for i in range(count):  # an object of a different size and place in each image
        top, left, side = generator.integers(0, size // 2, 3)
        masks[i, top : top + side + 2, left : left + side + 2] = True
    return maps, masks


def quantus_localisation(metric, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    x = np.zeros((len(maps), 1, *maps.shape[1:]), dtype=np.float32)
    return np.asarray(metric(model=None, x_batch=x, y_batch=np.zeros(len(maps), dtype=int), a_batch=maps[:, None],
                             s_batch=masks[:, None].astype(np.float32)))


def test_pointing_game_relevance_mass_and_rank_agree_with_quantus():
    maps, masks = tie_free(12)
    ours = localisation(torch.from_numpy(maps), torch.from_numpy(masks))
    theirs = {"pointing_game": quantus.PointingGame(normalise=False, disable_warnings=True),
              "relevance_mass": quantus.RelevanceMassAccuracy(normalise=False, disable_warnings=True),
              "relevance_rank": quantus.RelevanceRankAccuracy(normalise=False, disable_warnings=True)}
    for key, metric in theirs.items():
        np.testing.assert_allclose(ours[key].numpy(), quantus_localisation(metric, maps, masks), atol=1e-6,
                                   err_msg=key)
    assert 0 < float(ours["pointing_game"].mean()) < 1  # some peaks on the object, some off it


def test_on_a_shared_maximum_quantus_counts_any_hit_and_camlab_the_share():
    maps = np.zeros((1, 4, 4), dtype=np.float32)
    maps[0, 0, 0] = maps[0, 3, 3] = 1.0
    masks = np.zeros((1, 4, 4), dtype=bool)
    masks[0, 0] = True
    metric = quantus.PointingGame(normalise=False, disable_warnings=True)
    assert quantus_localisation(metric, maps, masks).tolist() == [1.0]  # one of two peaks inside: a hit
    assert localisation(torch.from_numpy(maps), torch.from_numpy(masks))["pointing_game"].tolist() == [0.5]


def test_deletion_curve_agrees_with_quantus_pixel_flipping(trapz):
    """Pixel flipping removes the highest-valued pixels to black in steps: camlab's deletion curve
    after its first point (the clean image), with Quantus's steps of 32 pixels. On a grey model:
    Quantus steps through the flattened channels x pixels of a broadcast map, not through pixels."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                          nn.Linear(128, 5)).eval()
    images = torch.rand(4, 1, 16, 16)
    images[:, :, 0, 0] = 0  # Quantus's "black" is the image's own minimum; camlab's is 0
    classes = model(images).argmax(1)
    maps, _ = tie_free(4, seed=1)
    ours = insertion_deletion(model, images, torch.from_numpy(maps), classes, steps=8, ranks=tie_ranks(
        torch.from_numpy(maps), orders=1))
    flipping = quantus.PixelFlipping(features_in_step=32, perturb_baseline="black", normalise=False,
                                     disable_warnings=True)
    theirs = flipping(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=maps[:, None],
                      softmax=True, device="cpu")
    np.testing.assert_allclose(ours["deletion_curve"][:, 1:].numpy(), np.asarray(theirs), atol=1e-5)
    auc = quantus.PixelFlipping(features_in_step=32, normalise=False, return_auc_per_sample=True,
                                disable_warnings=True)
    per_sample = auc(model=model, x_batch=images.numpy(), y_batch=classes.numpy(), a_batch=maps[:, None],
                     softmax=True, device="cpu")
    np.testing.assert_allclose(np.asarray(per_sample), np.trapezoid(np.asarray(theirs), axis=1), atol=1e-5)


def test_efficient_mprts_complexity_is_quantus_discrete_entropy():
    from quantus.functions.complexity_func import discrete_entropy

    from camlab.metrics.sanity import histogram_entropy

    maps, _ = tie_free(6, size=24, seed=5)
    maps[1] = np.where(maps[1] > 0.6, maps[1], 0)  # a CAM's many exact zeros
    theirs = [discrete_entropy(a=m, x=m, n_bins=100) for m in maps]
    np.testing.assert_allclose(histogram_entropy(torch.from_numpy(maps)).numpy(), theirs, rtol=1e-10)
