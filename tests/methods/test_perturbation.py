"""Score-CAM, SS-CAM, IS-CAM and Ablation-CAM: chunking, the flat-channel shortcut, the model's tail."""
import pytest
import torch

import camlab
from camlab.methods.perturbation import build_tail
from tests.nets import SkipNet, TinyNet


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


@pytest.mark.parametrize("method", ["scorecam", "ablationcam", "sscam", "iscam"])
def test_perturbation_methods_do_not_depend_on_chunk_size(images, method):
    model = TinyNet(dead_channels=5)
    maps = [camlab.explain(model, images, [method], target_layer="relu2", chunk_size=c)[method].raw for c in (1, 7, 500)]
    assert torch.allclose(maps[0], maps[1], atol=1e-5) and torch.allclose(maps[0], maps[2], atol=1e-5)


def test_scorecam_flat_channel_shortcut_matches_grad_cam(images):
    from pytorch_grad_cam import ScoreCAM

    model = TinyNet(dead_channels=6)
    ours = camlab.explain(model, images, ["scorecam"], target_layer="relu2")["scorecam"].display
    with ScoreCAM(model=model, target_layers=[model.relu2]) as cam:
        reference = torch.from_numpy(cam(images, targets=None))
    assert (ours - reference).abs().max() < 1e-4


def test_ablation_tail_is_used_when_separable_and_fallback_agrees(images):
    from pytorch_grad_cam import AblationCAM

    assert build_tail(TinyNet(), "relu2") is not None
    model = SkipNet()
    assert build_tail(model, "relu2") is None
    ours = camlab.explain(model, images, ["ablationcam"], target_layer="relu2")["ablationcam"].display
    with AblationCAM(model=model, target_layers=[model.relu2]) as cam:
        reference = torch.from_numpy(cam(images, targets=None))
    assert (ours - reference).abs().max() < 1e-4


def test_tail_recomputes_only_layers_after_the_target(images):
    model = TinyNet()
    tail = build_tail(model, "relu2")
    with torch.no_grad():
        acts = model.relu2(model.conv2(model.relu1(model.conv1(images))))
        assert torch.allclose(tail(acts), model(images), atol=1e-6)
    called = []
    model.conv1.register_forward_hook(lambda *a: called.append(1))
    tail(acts)
    assert not called
