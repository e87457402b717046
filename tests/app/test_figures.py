"""Plotly figures: shared or fitted colour ranges."""
import cv2
import numpy as np
import pytest
import torch

from camlab.app.figures import JET, heatmap_figure, heatmap_picture, insertion_deletion_chart
from camlab.render import jet_colours
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
    assert shared.data[1].z.shape == (56, 56)  # block means for hover, the picture itself is the overlay
    assert torch.allclose(torch.as_tensor(shared.data[1].z[0, 0]), heat[:4, :4].mean(), atol=1e-6)


def _decode(jpeg: bytes) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(int)


def test_heatmap_picture_is_the_overlay_with_a_colour_bar_of_the_same_colours(sample):
    heat = torch.zeros(sample.shape[1:])
    heat[:, 112:] = 1.0  # right half at the top of the scale
    picture = _decode(heatmap_picture(sample, heat, opacity=1.0))
    assert picture.shape[0] == 224 and picture.shape[1] > 224
    top, bottom = jet_colours(np.array([255, 0]))
    assert np.abs(picture[100, 150] - top).max() < 40 and np.abs(picture[100, 50] - bottom).max() < 40
    bar = picture[:, 224:]
    assert np.abs(bar[8:16] - top).max(axis=-1).min() < 40 and np.abs(bar[-16:-8] - bottom).max(axis=-1).min() < 40
    assert JET[0][1] == "rgb({},{},{})".format(*bottom) and JET[-1][1] == "rgb({},{},{})".format(*top)


def test_insertion_deletion_chart_has_every_point_of_every_curve():
    curves = {"gradcam": {"insertion": [0.1, 0.5, 0.9], "deletion": [0.9, 0.3, 0.1]}}
    data = insertion_deletion_chart(curves).data
    assert len(data) == 6 and set(data["curve"]) == {"insertion", "deletion"}
    assert data[data["curve"] == "deletion"]["probability"].tolist() == [0.9, 0.3, 0.1]
    assert data["fraction"].tolist()[:3] == [0.0, 0.5, 1.0]


def test_the_leakage_table_has_a_row_per_method_and_bars_from_zero_to_one():
    from types import SimpleNamespace

    from camlab.app.figures import leakage_table

    readout = SimpleNamespace(leakage={"gradcam": {"layer_leakage": 0.5, "display_leakage": 0.25},
                                       "hirescam": {"layer_leakage": 0.0, "display_leakage": 0.1}})
    styled = leakage_table(readout)
    assert styled.data.loc["gradcam", "leakage, walled cells"] == 0.5
    assert styled.data.loc["hirescam", "leakage, display map"] == 0.1
    html = styled.to_html()
    assert "0.5000" in html and "linear-gradient" in html  # formatted values, drawn bars


def test_scatter_points_are_named_in_the_legend_and_the_curves_say_which_line_is_dashed():
    from camlab.app.figures import insertion_deletion_chart, scatter_chart

    figure = scatter_chart({"gradcam": (10.0, 2.0), "hirescam": (10.1, 2.0)}, "t", "x", "y")
    assert [trace.name for trace in figure.data] == ["gradcam", "hirescam"]
    assert all("text" not in trace.mode for trace in figure.data)  # no labels to overlap or clip
    spec = insertion_deletion_chart({"gradcam": {"insertion": [0.1, 0.9], "deletion": [0.9, 0.1]}}).to_dict()
    assert "dashed" in spec["title"] and spec["encoding"]["strokeDash"]["scale"]["domain"] == ["insertion", "deletion"]
