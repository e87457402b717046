"""Rank correlation and the cascading randomisation check."""
import pytest
import torch

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
