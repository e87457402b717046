"""Rank correlation and the cascading randomisation check."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.metrics.sanity import cascading_randomisation
from tests.nets import TinyNet


def test_cascading_randomisation_reports_ranks_raw_ranks_and_ssim_per_layer():
    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16)
    report = cascading_randomisation(model, images, "gradcam", "relu2", model(images).argmax(1))
    assert [entry["layer"] for entry in report] == ["fc", "conv2", "conv1"]
    assert all(-1 <= entry[key] <= 1 for entry in report for key in ("rank", "rank_raw", "ssim"))
    assert report[-1]["rank"] < 0.99 and report[-1]["ssim"] < 0.99
    eigen = cascading_randomisation(model, images, "eigencam", "relu2", model(images).argmax(1))
    assert eigen[0]["rank"] == pytest.approx(1) and eigen[0]["ssim"] == pytest.approx(1, abs=1e-5)  # never reads fc


class _OneOutput(torch.nn.Module):
    """A PReLU (one slope) and a one-output head (one bias): parameters with a single element."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.act = torch.nn.PReLU()
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.act(self.conv(x)).mean((2, 3)))


def test_randomising_one_element_parameters_gives_finite_readouts():
    model, images = _OneOutput().eval(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    report = cascading_randomisation(model, images, "gradcam", "act", torch.zeros(2, dtype=torch.long))
    assert [entry["layer"] for entry in report] == ["head", "act", "conv"]
    assert all(torch.isfinite(torch.tensor(entry[key])) for entry in report for key in ("rank", "rank_raw", "ssim"))


def test_several_methods_in_one_cascade_get_what_each_gets_alone():
    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    classes = model(images).argmax(1)
    together = cascading_randomisation(model, images, ["gradcam", "hirescam", "eigencam"], "relu2", classes)
    for method in ("gradcam", "hirescam", "eigencam"):
        alone = cascading_randomisation(model, images, method, "relu2", classes)
        assert [e["layer"] for e in together[method]] == [e["layer"] for e in alone]
        for a, b in zip(together[method], alone):
            assert all(a[k] == pytest.approx(b[k], abs=1e-6) for k in ("rank", "rank_raw", "ssim"))


def test_random_logit_compares_each_images_map_with_another_classes_map():
    from camlab.metrics.sanity import random_logit

    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    classes = model(images).argmax(1)
    report = random_logit(model, images, ["gradcam", "eigencam", "hirescam"], "relu2", classes, seed=1)
    assert report["eigencam"]["rank"] == pytest.approx(1) and report["eigencam"]["ssim"] == pytest.approx(1, abs=1e-5)
    assert report["gradcam"]["rank_raw"] < 0.99  # another class's gradients weigh the channels differently
    assert report == random_logit(model, images, ["gradcam", "eigencam", "hirescam"], "relu2", classes, seed=1)
    assert random_logit(model, images, "gradcam", "relu2", classes, seed=1) == report["gradcam"]


@pytest.mark.parametrize("init", ["noise", "reset"])
def test_independent_randomisation_randomises_one_layer_at_a_time(init):
    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16)
    classes = model(images).argmax(1)
    cascade = cascading_randomisation(model, images, "gradcam", "relu2", classes, init=init)
    alone = cascading_randomisation(model, images, "gradcam", "relu2", classes, independent=True, init=init)
    assert [e["layer"] for e in alone] == [e["layer"] for e in cascade] == ["fc", "conv2", "conv1"]
    assert alone[0] == cascade[0]  # the output layer first: the same randomised model either way
    assert alone[-1] != cascade[-1]  # conv1 alone leaves conv2 and fc as trained
    assert cascading_randomisation(model, images, "gradcam", "relu2", classes, independent=True, init=init) == alone


def test_reset_randomisation_reinitialises_batch_norm_statistics_and_leaves_the_global_stream_alone():
    from camlab.metrics.sanity import _randomise

    norm = torch.nn.BatchNorm2d(4)
    norm.running_mean.fill_(3.0)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    _randomise(norm, "reset", torch.Generator(), seed=1)
    assert torch.equal(norm.running_mean, torch.zeros(4)) and torch.equal(norm.running_var, torch.ones(4))
    assert torch.equal(torch.rand(3), expected)
    conv = torch.nn.Conv2d(2, 2, 3)
    first = conv.weight.clone()
    _randomise(conv, "reset", torch.Generator(), seed=1)
    again = conv.weight.clone()
    _randomise(conv, "reset", torch.Generator(), seed=1)
    assert not torch.equal(first, again) and torch.equal(again, conv.weight)
    with pytest.raises(Exception, match="unknown randomisation"):
        cascading_randomisation(TinyNet().eval(), torch.rand(1, 3, 8, 8), "gradcam", "relu2", torch.tensor([0]),
                                init="shuffle")


def test_histogram_entropy_is_scipys_entropy_of_numpys_histogram():
    import numpy as np
    from scipy.stats import entropy

    from camlab.metrics.sanity import histogram_entropy

    generator = torch.Generator().manual_seed(3)
    maps = torch.rand(4, 20, 20, generator=generator) ** 3
    maps[1] = 0.25  # constant: one bin, entropy 0
    maps[2, :10] = 0  # many ties at the minimum
    maps[3] = maps[3].round(decimals=1)  # values on bin edges, the maximum included
    expected = [entropy(np.histogram(m.numpy(), bins=100)[0]) for m in maps]
    assert histogram_entropy(maps).tolist() == pytest.approx(expected, abs=1e-12)
    assert histogram_entropy(maps)[1] == 0


def test_smooth_mprt_with_one_sample_is_the_cascades_first_and_last_step():
    from camlab.metrics.sanity import smooth_mprt

    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    classes = model(images).argmax(1)
    cascade = cascading_randomisation(model, images, ["gradcam", "hirescam"], "relu2", classes, seed=2)
    smooth = smooth_mprt(model, images, ["gradcam", "hirescam"], "relu2", classes, seed=2, samples=1)
    for method in ("gradcam", "hirescam"):
        for key in ("rank", "rank_raw", "ssim"):
            assert smooth[method][f"{key}_smooth_top"] == pytest.approx(cascade[method][0][key], abs=1e-6)
            assert smooth[method][f"{key}_smooth_all"] == pytest.approx(cascade[method][-1][key], abs=1e-6)
    # without noise every copy is the image itself: averaging them changes nothing
    assert smooth_mprt(model, images, "gradcam", "relu2", classes, seed=2, samples=4, noise=0.0) == pytest.approx(
        smooth["gradcam"], abs=1e-5)


def test_smooth_mprt_averages_noisy_maps_of_the_same_noise_for_every_model():
    from camlab.metrics.sanity import smooth_mprt

    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    classes = model(images).argmax(1)
    smooth = smooth_mprt(model, images, ["eigencam", "gradcam"], "relu2", classes, samples=4, noise=0.2)
    # Eigen-CAM never reads the output layer: with the same noisy copies its smoothed maps are identical
    assert smooth["eigencam"]["rank_smooth_top"] == pytest.approx(1)
    assert smooth["gradcam"]["rank_smooth_all"] < 0.99
    noisier = smooth_mprt(model, images, "gradcam", "relu2", classes, samples=4, noise=0.2, seed=1)
    assert noisier != smooth["gradcam"]  # another seed, other noise and other random weights
    for bad in ({"samples": 0}, {"samples": 1.5}, {"noise": -0.1}, {"noise": float("nan")}):
        with pytest.raises(CamlabError):
            smooth_mprt(model, images, "gradcam", "relu2", classes, **bad)


def test_efficient_mprt_is_the_relative_rise_in_entropy_from_the_trained_to_the_random_model():
    import numpy as np
    from scipy.stats import entropy

    from camlab.engine import explain
    from camlab.metrics.sanity import efficient_mprt, randomised_models

    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    classes = model(images).argmax(1)
    found = efficient_mprt(model, images, ["gradcam", "layercam"], "relu2", classes, seed=3)
    *_, (_, full) = randomised_models(model, 3)  # the cascade's last model: every layer randomised
    for method in ("gradcam", "layercam"):
        trained = explain(model, images, [method], "relu2", targets=classes)[method].display
        random = explain(full, images, [method], "relu2", targets=classes)[method].display
        h0, h1 = ([entropy(np.histogram(m.numpy(), bins=100)[0]) for m in maps] for maps in (trained, random))
        assert found[method] == pytest.approx(np.mean([(b - a) / a for a, b in zip(h0, h1)]), rel=1e-6)
    assert efficient_mprt(model, images, "gradcam", "relu2", classes, seed=3) == found["gradcam"]
