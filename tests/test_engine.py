"""Engine behaviour: shared pass, state restoration, targets, layers, chunking, errors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import camlab
from camlab.errors import CamlabError
from camlab.layers import find_target_layer
from camlab.perturbation import build_tail
from camlab.registry import SHARED_PASS_CAMS, Cost

SHARED_PASS_METHODS = [*SHARED_PASS_CAMS, "gradient"]


class TinyNet(nn.Module):
    """Small CNN; ``functional=True`` uses F.relu instead of ReLU modules, same maths."""

    def __init__(self, functional=False, dead_channels=0):
        super().__init__()
        torch.manual_seed(0)
        self.functional = functional
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)
        if dead_channels:
            with torch.no_grad():
                self.conv2.bias[:dead_channels] = -1e4

    def forward(self, x):
        act = (lambda t: F.relu(t, inplace=True)) if self.functional else None
        x = act(self.conv1(x)) if act else self.relu1(self.conv1(x))
        x = F.relu(self.conv2(x)) if act else self.relu2(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class SkipNet(TinyNet):
    """A skip connection around conv2, so the model cannot be split after relu2."""

    def forward(self, x):
        h = self.relu1(self.conv1(x))
        y = self.relu2(self.conv2(h))
        return self.fc(torch.flatten(self.pool(y + h.repeat(1, 2, 1, 1)), 1))


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


def test_all_gradient_methods_share_one_forward_and_one_autograd_grad(images, monkeypatch):
    model = TinyNet()
    forwards = []
    model.register_forward_hook(lambda *args: forwards.append(1))
    calls = []
    original = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    result = camlab.explain(model, images, SHARED_PASS_METHODS, target_layer="relu2")
    assert len(forwards) == 1 and len(calls) == 1
    assert set(result.maps) == set(SHARED_PASS_METHODS)
    for name in SHARED_PASS_CAMS:
        assert result[name].raw.shape == (3, 16, 16)
    assert result["gradient"].raw.shape == images.shape


def test_no_parameter_gradients_accumulate_and_state_is_restored(images):
    model = TinyNet().train()
    model.fc.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # an outer no_grad must not stop the gradient methods
        result = camlab.explain(model, images, ["gradcam", "guided_backprop", "scorecam"], target_layer="relu2")
    assert result["gradcam"].display.max() > 0
    assert model.training and all(m.training for m in model.modules())
    assert not model.fc.weight.requires_grad and model.conv1.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_hooks_are_removed_and_errors_propagate(images):
    model = TinyNet()

    def broken_target(logits):
        raise RuntimeError("target failed")

    with pytest.raises(RuntimeError, match="target failed"):
        camlab.explain(model, images, ["gradcam"], target_layer="relu2", targets=broken_target)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_in_place_relu_after_the_target_layer_does_not_corrupt_activations(images):
    model = TinyNet()
    result = camlab.explain(model, images, ["hirescam"], target_layer="conv1")
    with torch.no_grad():
        conv1 = model.conv1(images)
    x = conv1.clone().requires_grad_()
    logits = model.fc(torch.flatten(model.pool(model.relu2(model.conv2(torch.relu(x)))), 1))
    (grad,) = torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), x)
    assert torch.allclose(result["hirescam"].raw, (grad * conv1).sum(1), atol=1e-6)
    assert (result["hirescam"].raw < 0).any()  # pre-ReLU activations were kept


def test_targets_none_int_list_and_callable(images):
    model = TinyNet()
    top = model(images).argmax(1)
    by_default = camlab.explain(model, images, ["gradcam"], target_layer="relu2")
    assert torch.equal(by_default.classes, top)
    as_list = camlab.explain(model, images, ["gradcam"], target_layer="relu2", targets=top.tolist())
    assert torch.allclose(as_list["gradcam"].raw, by_default["gradcam"].raw)
    as_int = camlab.explain(model, images, ["gradcam", "scorecam"], target_layer="relu2", targets=4)
    as_callable = camlab.explain(model, images, ["gradcam", "scorecam"], target_layer="relu2",
                                 targets=lambda logits: logits[:, 4])
    for method in ("gradcam", "scorecam"):
        assert torch.allclose(as_int[method].raw, as_callable[method].raw, atol=1e-6)
    assert not torch.allclose(as_int["gradcam"].raw, by_default["gradcam"].raw)


def test_guided_backprop_handles_functional_and_in_place_relu_alike(images):
    modules, functional = TinyNet(), TinyNet(functional=True)
    functional.load_state_dict(modules.state_dict())
    a = camlab.explain(modules, images, ["guided_backprop"], target_layer="conv2", targets=1)
    b = camlab.explain(functional, images, ["guided_backprop"], target_layer="conv2", targets=1)
    assert torch.allclose(a["guided_backprop"].raw, b["guided_backprop"].raw, atol=1e-7)
    plain = camlab.explain(functional, images, ["gradient"], target_layer="conv2", targets=1)
    assert not torch.allclose(b["guided_backprop"].raw, plain["gradient"].raw)  # the guidance did something


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam(images):
    result = camlab.explain(TinyNet(), images, ["guided_gradcam", "guided_backprop", "gradcam"], target_layer="relu2")
    expected = result["guided_backprop"].raw * result["gradcam"].display[:, None]
    assert torch.allclose(result["guided_gradcam"].raw, expected)


@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
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


def test_default_layer_is_found_by_a_dry_run(vgg16, resnet18):
    x = torch.randn(1, 3, 64, 64)
    assert find_target_layer(vgg16, x)[0] == "features.29"
    assert find_target_layer(resnet18, x)[0] == "layer4"
    assert camlab.explain(TinyNet(), torch.randn(2, 3, 16, 16), ["gradcam"]).layer == "relu2"


def test_display_maps_are_normalised_and_input_sized(images):
    result = camlab.explain(TinyNet(), images, list(camlab.REGISTRY), target_layer="relu2")
    for name, cam in result.maps.items():
        assert cam.display.shape == (3, 16, 16), name
        assert cam.display.min() >= 0 and cam.display.max() <= 1, name
        assert torch.isfinite(cam.raw).all(), name


def test_randomcam_is_reproducible(images):
    a = camlab.explain(TinyNet(), images, ["randomcam"], target_layer="relu2")["randomcam"].raw
    b = camlab.explain(TinyNet(), images, ["randomcam"], target_layer="relu2")["randomcam"].raw
    assert torch.equal(a, b)


def test_registry_lists_family_and_cost_for_every_method():
    infos = camlab.list_methods()
    assert {i.name for i in infos} >= {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam",
                                       "scorecam", "ablationcam", "randomcam", "gradient", "guided_backprop",
                                       "guided_gradcam"}
    assert {i.name for i in infos if i.slow} == {"scorecam", "ablationcam"}
    assert camlab.get_method("gradcam").cost is Cost.SHARED_BACKWARD
    assert all(i.summary for i in infos)


# --- bad input -------------------------------------------------------------------------------

def test_unknown_method_is_named_with_the_known_ones(images):
    with pytest.raises(CamlabError, match=r"unknown CAM method 'gradkam'.*gradcam"):
        camlab.explain(TinyNet(), images, ["gradkam"])


def test_missing_layer_name_suggests_close_ones(images):
    with pytest.raises(CamlabError, match=r"no layer named 'relu3'.*'relu2'"):
        camlab.explain(TinyNet(), images, ["gradcam"], target_layer="relu3")


def test_non_4d_input_is_refused():
    with pytest.raises(CamlabError, match="4-D batch"):
        camlab.explain(TinyNet(), torch.randn(3, 16, 16), ["gradcam"], target_layer="relu2")


def test_non_classifier_output_is_refused(images):
    segmenter = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(CamlabError, match=r"classifier returning logits of shape \(N, classes\)"):
        camlab.explain(segmenter, images, ["gradcam"], target_layer="0")


def test_device_mismatch_and_bad_device_strings(images):
    with pytest.raises(CamlabError, match="the model is on cpu but the images are on meta"):
        camlab.explain(TinyNet(), images.to("meta"), ["gradcam"])
    with pytest.raises(CamlabError, match="not a device"):
        camlab.resolve_device("gpu0")
    assert camlab.resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_request_on_a_cpu_machine_is_explained():
    with pytest.raises(CamlabError, match="no usable CUDA GPU"):
        camlab.resolve_device("cuda")
    assert camlab.resolve_device(None).type == "cpu"


def test_bad_targets_are_refused(images):
    with pytest.raises(CamlabError, match=r"lie in \[0, 4\]"):
        camlab.explain(TinyNet(), images, ["gradcam"], target_layer="relu2", targets=9)
    with pytest.raises(CamlabError, match="got 2 targets for a batch of 3"):
        camlab.explain(TinyNet(), images, ["gradcam"], target_layer="relu2", targets=[0, 1])
