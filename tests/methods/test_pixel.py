"""Pixel-space and sampled methods: guided backprop through any ReLU, guided Grad-CAM, FullGrad, Integrated
Gradients, SmoothGrad (and the seeded options of SS-CAM, Smooth Grad-CAM++)."""
import pytest
import torch

import camlab
from camlab import CamlabError
from camlab.methods.pixel import integration_points
from tests.nets import TinyNet


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


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


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_middle", "riemann_trapezoid"])
def test_integrated_gradients_are_complete(rule, images):
    """The attributions sum to score(input) - score(baseline), within the quadrature's error (ReLU kinks
    on the path: about 1% at 64 steps on this net)."""
    model = TinyNet().eval()
    result = camlab.explain(model, images, ["integrated_gradients"], targets=1,
                            options={"integrated_gradients": {"rule": rule, "steps": 64, "baseline": -0.5}})
    with torch.no_grad():
        gap = model(images)[:, 1] - model(torch.full_like(images, -0.5))[:, 1]
    assert torch.allclose(result["integrated_gradients"].raw.sum(dim=(1, 2, 3)), gap, rtol=0.02)


def test_quadrature_weights_integrate_polynomials():
    for rule, degree in [("gausslegendre", 15), ("riemann_middle", 1), ("riemann_trapezoid", 1)]:
        alphas, weights = integration_points(8, rule)
        for power in range(degree + 1):
            assert abs((weights * alphas**power).sum() - 1 / (power + 1)) < 1e-12, (rule, power)


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad", "smoothgradcam++"])
def test_sampled_methods_do_not_depend_on_chunk_size(method, images):
    maps = [camlab.explain(TinyNet(), images, [method], targets=2, chunk_size=size)[method].raw for size in (3, 64)]
    assert torch.allclose(*maps, atol=1e-6)


def test_sscam_is_seeded_and_noise_changes_it(images):
    model = TinyNet()
    runs = [camlab.explain(model, images, ["sscam"], target_layer="relu2",
                           options={"sscam": {"seed": seed, "samples": 2}})["sscam"].raw for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])


def test_fullgrad_refuses_a_model_blind_to_its_input(images):
    class Constant(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            features = self.conv(x).mean(dim=(2, 3))
            return self.fc(features.detach())

    with pytest.raises(CamlabError, match="does not depend"):
        camlab.explain(Constant(), images, ["fullgrad"], target_layer="conv")


def test_smoothgrad_is_the_gradient_without_noise_and_seeded_with_it(images):
    model = TinyNet()
    quiet = camlab.explain(model, images, ["smoothgrad", "gradient"], options={"smoothgrad": {"noise": 0.0, "samples": 3}})
    assert torch.allclose(quiet["smoothgrad"].raw, quiet["gradient"].raw, atol=1e-6)
    runs = [camlab.explain(model, images, ["smoothgrad"], options={"smoothgrad": {"seed": seed}})["smoothgrad"].raw
            for seed in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])


@pytest.mark.parametrize(("method", "options", "words"), [
    ("integrated_gradients", {"steps": 0}, "steps must be between"),
    ("integrated_gradients", {"rule": "simpson"}, "rule must be one of"),
    ("smoothgrad", {"samples": 5000}, "samples must be between"),
    ("smoothgrad", {"noise": -1.0}, "noise must be >= 0"),
    ("smoothgrad", {"seed": -1}, "seed must be between 0 and"),
    ("smoothgradcam++", {"samples": 0}, "samples must be between"),
    ("sscam", {"samples": 1025}, "samples must be between"),
    ("sscam", {"noise": -0.5}, "noise must be >= 0"),
    ("sscam", {"seed": 2**64}, "seed must be between 0 and"),
    ("iscam", {"samples": 0}, "samples must be between"),
])
def test_sampled_methods_refuse_unbounded_or_unknown_options(method, options, words, images):
    with pytest.raises(CamlabError, match=words):
        camlab.explain(TinyNet(), images, [method], options={method: options})
