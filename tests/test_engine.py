"""The engine: one shared pass, state restored, hooks removed, inputs checked, options passed through."""
import pytest
import torch
from torch import nn

import camlab
from camlab.context import AUGMENTATIONS
from camlab.errors import CamlabError
from camlab.maps import minmax, upsample
from camlab.methods import SHARED_PASS_CAMS
from tests.nets import TinyNet

SHARED_PASS_METHODS = [*SHARED_PASS_CAMS, "gradient"]


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

    camlab.explain(model, images, ["gradcam"], target_layer="relu2")  # the first call's dry run is kept
    forwards.clear()
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


def test_each_module_gets_back_its_own_mode(images):
    """A model in eval mode with one submodule training (and one all in eval) keeps its modes as they were."""
    mixed, evaluating = TinyNet().eval(), TinyNet().eval()
    mixed.conv1.train()
    modes = [(m, m.training) for m in mixed.modules()]
    seen = []
    mixed.conv1.register_forward_pre_hook(lambda module, _args: seen.append(module.training))
    camlab.explain(mixed, images, ["gradcam"], target_layer="relu2")
    camlab.explain(evaluating, images, ["gradcam"], target_layer="relu2")
    assert seen and not any(seen)  # explained in eval mode
    assert [m.training for m, _ in modes] == [training for _, training in modes]
    assert not any(m.training for m in evaluating.modules())


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


# Methods defined for other networks: LeGrad reads a vision transformer's attention, RefineCAM
# multiplies maps of several resolutions and TinyNet has one.
ELSEWHERE = {"legrad": "VisionTransformer", "refinecam": "no layer at a finer grid"}


def test_display_maps_are_normalised_and_input_sized(images):
    methods = [m for m in camlab.REGISTRY if m not in ELSEWHERE]
    result = camlab.explain(TinyNet(), images, methods, target_layer="relu2")
    for name, cam in result.maps.items():
        assert cam.display.shape == (3, 16, 16), name
        assert cam.display.min() >= 0 and cam.display.max() <= 1, name
        assert torch.isfinite(cam.raw).all(), name


@pytest.mark.parametrize("method", sorted(ELSEWHERE))
def test_methods_for_other_networks_say_why_they_cannot_run(method, images):
    with pytest.raises(CamlabError, match=ELSEWHERE[method]):
        camlab.explain(TinyNet(), images, [method], target_layer="relu2")


def test_non_4d_input_is_refused():
    with pytest.raises(CamlabError, match="4-D batch"):
        camlab.explain(TinyNet(), torch.randn(3, 16, 16), ["gradcam"], target_layer="relu2")


def test_non_classifier_output_is_refused(images):
    segmenter = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(CamlabError, match=r"classifier returning logits of shape \(N, classes\)"):
        camlab.explain(segmenter, images, ["gradcam"], target_layer="0")


def test_refinecam_reads_its_finer_layers_from_the_shared_pass(resnet18, images64):
    """RefineCAM beside Grad-CAM costs one forward (its finer layers recorded by the shared pass, the dry
    run that found them kept), one per augmentation under aug_smooth, and its map is still the product of
    its base's maps computed at each layer on its own."""
    forwards = []
    handle = resnet18.register_forward_hook(lambda *_: forwards.append(1))
    try:
        camlab.explain(resnet18, images64, ["refinecam"], target_layer="layer4")
        forwards.clear()
        result = camlab.explain(resnet18, images64, ["refinecam", "gradcam"], target_layer="layer4")
        assert len(forwards) == 1
        forwards.clear()
        camlab.explain(resnet18, images64, ["refinecam"], target_layer="layer4",
                       options={"refinecam": {"aug_smooth": True}})
        assert len(forwards) == len(AUGMENTATIONS)
    finally:
        handle.remove()
    per_layer = [camlab.explain(resnet18, images64, ["gradcam++"], target_layer=name)["gradcam++"].raw
                 for name in ("layer4", "layer3", "layer2")]
    finest = tuple(per_layer[-1].shape[-2:])
    expected = torch.stack([upsample(minmax(m.clamp(min=0)), finest) for m in per_layer]).prod(dim=0)
    assert torch.allclose(result["refinecam"].raw, expected, atol=1e-6)


def test_refinecam_refuses_a_misspelt_layer_before_any_pass(images):
    with pytest.raises(CamlabError, match="no layer named 'conv9'"):
        camlab.explain(TinyNet(), images, ["refinecam"], target_layer="relu2", options={"refinecam": {"layers": "conv9"}})
