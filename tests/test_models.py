"""Model files and torchvision models: state_dicts by name, TorchScript refused, weights offline."""
import pytest
import torch

import camlab
from camlab.errors import CamlabError
from camlab.models import load_model_file, load_torchvision
from camlab.study.wallvgg import masked_vgg


def test_user_state_dict_and_torchscript_load(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=3)
    torch.save(net.state_dict(), tmp_path / "resnet18_finetuned.pt")
    loaded = load_model_file(tmp_path / "resnet18_finetuned.pt")
    assert loaded.architecture == "resnet18" and len(loaded.class_names) == 3
    scripted = torch.jit.trace(masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval(), torch.rand(1, 3, 32, 32))
    scripted.save(str(tmp_path / "model.ts"))
    assert load_model_file(tmp_path / "model.ts").model(torch.rand(1, 3, 32, 32)).shape == (1, 8)
    with pytest.raises(CamlabError, match="TorchScript model: its layers cannot be hooked"):
        camlab.explain(load_model_file(tmp_path / "model.ts").model, torch.rand(1, 3, 32, 32), ["gradcam"])


def test_torchvision_weights_offline_give_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CamlabError, match="not available offline; put the file at"):
        load_torchvision("resnet18")
    random = load_torchvision("resnet18", pretrained=False)
    assert random.model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
