"""Forward-only CAMs: the random baseline is reproducible."""
import pytest
import torch

import camlab
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
