"""The paper's Table 1 on the shipped models: which CAMs see through the wall."""

import math

import pytest
import torch

from camlab.study.table1 import CONTROL_TABLE_ROWS, TABLE_METHODS, leakage_table, to_markdown
from camlab.study.wallresnet import masked_resnet
from camlab.study.wallvgg import load_checkpoint, save_checkpoint
from camlab.walls import unseen_region
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


def test_the_controls_score_what_a_map_that_ignores_the_model_scores(table):
    entry = load_checkpoint(MODELS / "masked_vgg.pt")
    region = unseen_region(entry.model, (3, entry.input_size, entry.input_size))
    area = float(region.float().mean())
    masked = table[("masked_vgg", "stack-shapes")]
    assert masked["control: all-zero"] == (0.0, 0.0)
    assert masked["control: all-ones"][0] == pytest.approx(math.sqrt(area), abs=1e-6)
    assert masked["control: all-ones"][1] == pytest.approx(0.0, abs=1e-6)
    for row in ("control: random", "control: Random-CAM"):
        assert 0.05 < masked[row][0] < 0.95 and masked[row][1] > 0, (row, masked[row])


def test_the_element_wise_methods_are_dark_where_their_own_values_placed_at_random_are_not(table):
    masked = table[("masked_vgg", "stack-shapes")]
    for method in ("hirescam", "layercam"):
        assert masked[method][0] < 0.01
        assert masked[method + " (matched)"][0] > 0.1, masked[method + " (matched)"]


def test_markdown_lists_the_controls_and_the_matched_rows(table):
    assert all(f"| {row} |" in to_markdown(table) for row in CONTROL_TABLE_ROWS)
    assert "| gradcam (matched) |" in to_markdown(table, ["gradcam (matched)"])


def test_at_the_layer_cells_element_wise_maps_are_exactly_dark_and_pixel_methods_have_no_row():
    paths = [MODELS / "masked_vgg.pt", MODELS / "baseline_vgg.pt"]
    cells = leakage_table(paths, ["stack-shapes"], images=8, methods=["gradcam", "hirescam", "layercam", "gradient"],
                          progress=False, region="cells")
    masked, baseline = cells[("masked_vgg", "stack-shapes")], cells[("baseline_vgg", "stack-shapes")]
    assert masked["hirescam"] == (0.0, 0.0) and masked["layercam"] == (0.0, 0.0)
    assert masked["gradcam"][0] > 0.1 and baseline["hirescam"][0] > 0.05
    assert masked["control: all-ones"][0] == pytest.approx(math.sqrt(9 / 14), abs=1e-6)
    assert "gradient" not in masked and "gradient (matched)" not in masked
    assert "| gradient |" not in to_markdown(cells, ["gradcam", "gradient"])


def test_a_walled_resnet_has_no_unseen_pixel_but_walled_cells(tmp_path):
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "masked_resnet.pt", masked_resnet(width=0.25).eval(), "masked_resnet",
                           [f"c{i}" for i in range(8)])
    with pytest.raises(SystemExit, match="--region cells"):
        leakage_table([path], ["stack-shapes"], images=2, methods=["hirescam"], progress=False)
    cells = leakage_table([path], ["stack-shapes"], images=2, methods=["gradcam", "hirescam"], progress=False,
                          region="cells")[("masked_resnet", "stack-shapes")]
    assert cells["hirescam"] == (0.0, 0.0) and cells["gradcam"][0] > 0
    with pytest.raises(SystemExit, match="no wall to measure"):
        leakage_table([MODELS / "baseline_vgg.pt"], ["stack-shapes"], images=2, methods=["hirescam"], progress=False,
                      region="cells")
