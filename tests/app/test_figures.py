"""Plotly figures: shared or fitted colour ranges."""
import pytest
import torch

from camlab.app.figures import heatmap_figure
from camlab.study.data import StackedDataset


@pytest.fixture(scope="module")
def sample():
    return StackedDataset("stack-shapes", "test")[5][0]


def test_heatmap_figure_shares_or_fits_its_colour_range(sample):
    heat = torch.rand(sample.shape[1:]) * 0.5
    fitted = heatmap_figure(sample, heat, "m")
    shared = heatmap_figure(sample, heat, "m", zmax=2.0)
    assert fitted.data[1].zmax == pytest.approx(float(heat.max()))
    assert shared.data[1].zmax == 2.0
    assert "value" in shared.data[1].hovertemplate
