"""Device choice and device mismatches."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from tests.nets import TinyNet


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


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
