"""The Walls page's computations: occlusion regions are bounded, batched and cached."""
import pytest
import torch

from camlab.app.sources import open_shipped
from camlab.app.state import explain_cached, predict
from camlab.app.walls import occlusion_readout
from camlab.metrics.faithfulness import probabilities
from camlab.study.data import StackedDataset
from camlab.walls import BlindModel


@pytest.fixture(scope="module")
def masked():
    return open_shipped("masked_vgg", "cpu")


def _box(x0: int, y0: int, size: int = 224) -> torch.Tensor:
    region = torch.zeros(size, size, dtype=torch.bool)
    region[y0 : y0 + 40, x0 : x0 + 40] = True
    return region


def test_occlusion_runs_each_region_once_and_matches_occluding_it_directly(masked):
    image = StackedDataset("stack-shapes", "test")[3][0]
    result = explain_cached(masked, image, ["gradcam"])
    predict(masked, image)  # the unoccluded probability, cached before counting
    forwards = []
    handle = masked.loaded.model.register_forward_pre_hook(lambda _m, args: forwards.append(args[0].shape[0]))
    try:
        regions = [_box(10, 10), _box(100, 30), _box(150, 120)]
        first = occlusion_readout(masked, image, result, regions, "mean")
        assert forwards == [3]  # one batch for three regions
        second = occlusion_readout(masked, image, result, [*regions, _box(60, 60)], "mean")
        assert forwards == [3, 1]  # a stroke that adds a region runs only that region
    finally:
        handle.remove()
    assert second.p_after[:3] == first.p_after
    for drop, increase, p in zip(second.drops, second.increases, second.p_after):
        assert (drop == 0 or increase == 0) and (increase > 0) == (p > second.p_before)
    target = torch.tensor([first.target])
    for region, p in zip([*regions, _box(60, 60)], second.p_after):
        direct = probabilities(masked.loaded.model, BlindModel(masked.loaded.model, region, "mean").blind(image[None]),
                               target)
        assert p == pytest.approx(float(direct), abs=1e-6)


def test_the_walls_page_walls_a_swin_transformers_channels_last_grid():
    from camlab.app.sources import open_torchvision
    from camlab.app.walls import feature_wall_readout
    from camlab.walls import paper_wall

    torch.manual_seed(0)
    entry = open_torchvision("swin_t", "cpu", pretrained=False)
    assert entry.loaded.reshape == "nhwc"
    readout = feature_wall_readout(entry, torch.rand(3, 224, 224), ["gradcam", "hirescam", "layercam"],
                                   entry.loaded.default_layer, paper_wall(224))
    assert readout.cells.shape == (7, 7) and readout.cells[3:].all() and not readout.cells[:2].any()
    assert readout.leakage["hirescam"]["layer_leakage"] == readout.leakage["layercam"]["layer_leakage"] == 0
    assert readout.leakage["gradcam"]["layer_leakage"] > 0.1
    assert not readout.unseen.pixels.any() and readout.unseen.reason


def test_the_walled_models_own_wall_is_found_on_its_layer_and_cached(masked):
    from camlab.app.walls import own_wall_readout

    image = StackedDataset("stack-shapes", "test")[3][0]
    layer = masked.loaded.default_layer
    readout = own_wall_readout(masked, image, ["gradcam", "hirescam", "layercam"], layer)
    assert readout is not None and readout.unread.layer == layer
    assert readout.unread.cells[5:].all() and not readout.unread.cells[:5].any()
    assert readout.leakage["hirescam"] == readout.leakage["layercam"] == 0 < 0.1 < readout.leakage["gradcam"]
    assert own_wall_readout(masked, image, ["gradcam"], layer).unread is readout.unread
    assert own_wall_readout(open_shipped("baseline_vgg", "cpu"), image, ["gradcam"], layer) is None
