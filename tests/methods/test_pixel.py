"""Pixel-space methods: guided backprop through any ReLU, guided Grad-CAM."""
import pytest
import torch

import camlab
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
