"""Finding the target layer by dry run, and names that do not exist."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from camlab.layers import CHANNELS_LAST_REUSE, find_target_layer
from tests.nets import TinyNet


def test_default_layer_is_found_by_a_dry_run(vgg16, resnet18):
    x = torch.randn(1, 3, 64, 64)
    assert find_target_layer(vgg16, x)[0] == "features.29"
    assert find_target_layer(resnet18, x)[0] == "layer4"
    assert camlab.explain(TinyNet(), torch.randn(2, 3, 16, 16), ["gradcam"]).layer == "relu2"


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


def test_missing_layer_name_suggests_close_ones(images):
    with pytest.raises(CamlabError, match=r"no layer named 'relu3'.*'relu2'"):
        camlab.explain(TinyNet(), images, ["gradcam"], target_layer="relu3")


def test_the_dry_run_is_kept_for_the_same_model_shape_and_modules():
    """The second explain() without a layer skips the dry run; a new image size, or a module replaced,
    runs it again."""
    model = TinyNet()
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(1))
    x = torch.randn(2, 3, 16, 16)
    assert camlab.explain(model, x, ["gradcam"]).layer == "relu2"
    first = len(forwards)
    assert camlab.explain(model, x, ["gradcam"]).layer == "relu2"
    assert len(forwards) == first + 1  # the explanation's own forward only
    camlab.explain(model, torch.randn(2, 3, 20, 20), ["gradcam"])
    assert len(forwards) == 2 * first + 1  # another size: a dry run again
    camlab.explain(model, torch.randn(2, 3, 20, 20), ["gradcam"])
    assert len(forwards) == 2 * first + 2  # that size again: kept
    model.relu2 = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 1))  # a 1x1 conv after the ReLU
    result = camlab.explain(model, torch.randn(2, 3, 20, 20), ["gradcam"])
    assert len(forwards) == 3 * first + 2  # another module: a dry run again
    assert result.layer == "relu2"


def test_the_forward_runs_channels_last_once_each_weight_is_used_at_enough_positions():
    """TinyNet's convolutions use each weight at 16 x 16 = 256 positions per image: one image runs in the
    standard layout, three (768 >= CHANNELS_LAST_REUSE) in channels-last, with the same maps."""
    model = TinyNet()
    assert CHANNELS_LAST_REUSE == 600
    layouts = []
    model.conv1.register_forward_pre_hook(
        lambda _m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    image = torch.randn(1, 3, 16, 16)
    alone = camlab.explain(model, image, ["gradcam", "gradient"], target_layer="relu2")
    batch = camlab.explain(model, image.repeat(3, 1, 1, 1), ["gradcam", "gradient"], target_layer="relu2")
    assert layouts == [False, False, True]  # the dry run (kept), one image, three
    for method in ("gradcam", "gradient"):
        assert torch.allclose(batch[method].raw, alone[method].raw.expand_as(batch[method].raw), atol=1e-6)
    assert batch["gradient"].raw.is_contiguous()  # handed back in the caller's layout
