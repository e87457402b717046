"""The walled ResNet (camlab.study.wallresnet): its head cannot read the walled rows of layer4."""

import pytest
import torch

from camlab import CamlabError, explain
from camlab.study.train import initial_model, parse_args
from camlab.study.wallresnet import WallResNet, WallResNetConfig, baseline_resnet, masked_resnet
from camlab.walls import FeatureWall, paper_wall


def _walled() -> WallResNet:
    torch.manual_seed(0)
    return masked_resnet(width=0.25).eval()


def test_the_logits_ignore_the_walled_rows_of_layer4_while_cams_read_them():
    model = _walled()
    images = torch.rand(2, 3, 224, 224)
    noise = torch.randn(2, model.layer4[-1].conv2.out_channels, 14, 14) * 5

    def scrambled(_module, _inputs, output):
        changed = output.clone()
        changed[..., 5:, :] += noise[..., 5:, :]  # any values on the walled rows
        return changed

    with torch.no_grad():
        before = model(images)
        handle = model.layer4.register_forward_hook(scrambled)
        after = model(images)
        handle.remove()
    assert torch.equal(before, after)
    result = explain(model, images, ["gradcam", "hirescam", "layercam"], target_layer=model.default_layer)
    assert result["hirescam"].raw.shape == (2, 14, 14)
    assert (result["hirescam"].raw[:, 5:] == 0).all() and (result["layercam"].raw[:, 5:] == 0).all()
    assert (result["gradcam"].raw[:, 5:] != 0).any()


def test_the_built_in_wall_is_the_feature_wall_on_its_twin():
    """Same weights without the wall, walled by camlab.walls.FeatureWall at layer4: the same logits."""
    walled = _walled()
    twin = WallResNet(WallResNetConfig(width=0.25, masked_rows=0)).eval()
    twin.load_state_dict(walled.state_dict())
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(walled(images), FeatureWall(twin, "layer4", paper_wall(224))(images), atol=1e-6)
        assert not torch.allclose(walled(images), twin(images), atol=1e-4)


def test_camlab_train_builds_the_resnets_and_refuses_a_plain_one():
    masked = initial_model(parse_args(["--model", "masked_resnet", "--width", "0.25", "--masked-rows", "7"]))
    assert isinstance(masked, WallResNet) and masked.config.masked_rows == 7 and masked.config.width == 0.25
    assert initial_model(parse_args(["--model", "baseline_resnet"])).config.masked_rows == 0
    with pytest.raises(CamlabError, match="a ResNet's blocks have batch norm"):
        initial_model(parse_args(["--model", "masked_resnet", "--no-batch-norm"]))
    with pytest.raises(CamlabError, match="width"):
        WallResNetConfig(width=0.125)
    with pytest.raises(CamlabError, match="multiple of 16"):
        WallResNetConfig(input_size=100)
    assert baseline_resnet().config.masked_rows == 0
