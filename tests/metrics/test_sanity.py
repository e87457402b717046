"""Rank correlation and the cascading randomisation check."""
import pytest
import torch

from camlab.metrics.sanity import cascading_randomisation
from camlab.metrics.similarity import spearman
from tests.nets import TinyNet


def test_spearman_and_cascading_randomisation():
    a = torch.arange(10.0)[None]
    assert float(spearman(a, a)) == pytest.approx(1) and float(spearman(a, -a)) == pytest.approx(-1)
    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16)
    report = cascading_randomisation(model, images, "gradcam", "relu2", model(images).argmax(1))
    assert [name for name, _ in report] == ["fc", "conv2", "conv1"]
    assert all(-1 <= c <= 1 for _, c in report) and report[-1][1] < 0.99
