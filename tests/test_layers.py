"""Finding the target layer by dry run, and names that do not exist."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from camlab.layers import find_target_layer
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
