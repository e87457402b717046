"""Forward-only CAMs: the random baseline is reproducible; CAM agrees with torchcam where it applies
and refuses where it does not."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from camlab.maps import minmax
from tests.nets import TinyNet


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


def test_randomcam_is_reproducible(images):
    a = camlab.explain(TinyNet(), images, ["randomcam"], target_layer="relu2")["randomcam"].raw
    b = camlab.explain(TinyNet(), images, ["randomcam"], target_layer="relu2")["randomcam"].raw
    assert torch.equal(a, b)


def test_randomcam_seed_is_an_option(images):
    other = camlab.explain(TinyNet(), images, ["randomcam"], target_layer="relu2", options={"randomcam": {"seed": 1}})
    default = camlab.explain(TinyNet(), images, ["randomcam"], target_layer="relu2")
    assert not torch.equal(other["randomcam"].raw, default["randomcam"].raw)


def test_cam_matches_torchcam_on_a_pooled_linear_head(resnet18, images64):
    torchcam = pytest.importorskip("torchcam.methods")
    result = camlab.explain(resnet18, images64, ["cam"], target_layer="layer4")
    with torchcam.CAM(resnet18, "layer4", fc_layer="fc", input_shape=tuple(images64.shape[1:])) as extractor:
        scores = resnet18(images64)
        reference = extractor(scores.argmax(1).tolist(), scores)[0]
    assert (minmax(result["cam"].raw.clamp(min=0)) - reference).abs().max() < 1e-4
    # the identity CAM rests on: the class score is the mean of its map plus the head's bias
    bias = resnet18.fc.bias[result.classes]
    assert torch.allclose(result["cam"].raw.mean((1, 2)) + bias, scores.gather(1, result.classes[:, None])[:, 0],
                          atol=1e-4)


def test_cam_refuses_heads_and_layers_it_does_not_apply_to(vgg16, resnet18, images64):
    with pytest.raises(CamlabError, match="one linear layer"):  # VGG's three-layer classifier
        camlab.explain(vgg16, images64, ["cam"], target_layer="features.29")
    with pytest.raises(CamlabError, match="does not apply at layer4.0"):  # 512 channels, but not the pooled map
        camlab.explain(resnet18, images64, ["cam"], target_layer="layer4.0")
    with pytest.raises(CamlabError, match="class targets"):
        camlab.explain(resnet18, images64, ["cam"], target_layer="layer4", targets=lambda logits: logits[:, 0])
