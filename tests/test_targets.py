"""Targets: None, int, list and callable, and bad ones refused."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from tests.nets import TinyNet


@pytest.fixture
def images():
    torch.manual_seed(2)
    return torch.randn(3, 3, 16, 16)


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


def test_bad_targets_are_refused(images):
    with pytest.raises(CamlabError, match=r"in \[0, 4\], got 9"):
        camlab.explain(TinyNet(), images, ["gradcam"], target_layer="relu2", targets=9)
    with pytest.raises(CamlabError, match="got 2 targets for a batch of 3"):
        camlab.explain(TinyNet(), images, ["gradcam"], target_layer="relu2", targets=[0, 1])
