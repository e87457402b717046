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


def test_cpu_stopwatch_times_intervals_between_marks():
    clock = camlab.device.Stopwatch(torch.device("cpu"))
    start = clock.mark()
    sum(range(10_000))
    assert 0 < clock.seconds(start, clock.mark()) < 1


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_every_method_on_cuda_matches_the_cpu(images):
    from camlab.registry import REGISTRY

    model = TinyNet().eval()
    methods = [m for m in REGISTRY if m != "randomcam"]
    on_cpu = camlab.explain(model, images, methods, targets=1)
    on_gpu = camlab.explain(model.cuda(), images.cuda(), methods, targets=1)
    for method in methods:
        assert on_gpu[method].raw.device.type == "cuda"
        assert torch.allclose(on_gpu[method].display.cpu(), on_cpu[method].display, atol=1e-4), method
        assert on_gpu[method].seconds >= 0 and on_gpu[method].shared_seconds > 0


@cuda
def test_a_class_out_of_range_is_refused_before_it_reaches_the_gpu(images):
    model = TinyNet().eval().cuda()
    with pytest.raises(CamlabError, match="class"):
        camlab.explain(model, images.cuda(), ["gradcam"], targets=10**6)
    assert camlab.explain(model, images.cuda(), ["gradcam"], targets=0)["gradcam"].raw.isfinite().all()


@cuda
def test_evaluation_and_readouts_run_on_cuda():
    from camlab.evaluation import ReadoutConfig, evaluate

    data = [(torch.rand(3, 16, 16), 0) for _ in range(4)]
    outcome = evaluate(TinyNet().eval().cuda(), None, data, ReadoutConfig(("gradcam", "hirescam"), steps=4), batch_size=2,
                       progress=False)
    assert outcome.images == 4 and 0 <= outcome.table["gradcam"]["average_drop"] <= 100
