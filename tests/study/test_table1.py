"""The paper's Table 1 on the shipped models: which CAMs see through the wall."""

import pytest

from camlab.study.table1 import TABLE_METHODS, leakage_table, to_markdown
from tests.paths import MODELS


@pytest.fixture(scope="module")
def table():
    paths = [MODELS / "masked_vgg.pt", MODELS / "baseline_vgg.pt"]
    return leakage_table(paths, ["stack-shapes"], images=16, progress=False)


def test_element_wise_methods_stay_dark_behind_the_wall(table):
    masked = table[("masked_vgg", "stack-shapes")]
    for method in ("hirescam", "layercam", "gradcamelementwise"):
        assert masked[method][0] < 0.01, (method, masked[method])


def test_channel_weighted_methods_see_through_the_wall(table):
    masked = table[("masked_vgg", "stack-shapes")]
    for method in ("gradcam", "fem", "kpcacam", "finercam"):  # channel weights, with or without a gradient
        assert masked[method][0] > 0.1, (method, masked[method])
    assert masked["gradcam"][0] > 10 * max(masked["hirescam"][0], masked["layercam"][0], 1e-3)


def test_pixel_gradients_are_zero_on_the_pixels_the_model_provably_ignores(table):
    masked = table[("masked_vgg", "stack-shapes")]
    for method in ("gradient", "guided_backprop", "fullgrad"):
        assert masked[method] == (0.0, 0.0), (method, masked[method])
    assert table[("baseline_vgg", "stack-shapes")]["gradient"][0] > 0.05


def test_the_unwalled_twin_uses_the_bottom_band(table):
    baseline = table[("baseline_vgg", "stack-shapes")]
    assert baseline["hirescam"][0] > 0.05


def test_markdown_lists_every_method(table):
    markdown = to_markdown(table)
    assert all(f"| {m} |" in markdown for m in TABLE_METHODS)
    assert "masked_vgg / stack-shapes" in markdown
