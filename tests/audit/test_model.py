"""The auditor's model: torchvision, timm, state_dicts with their architecture named, camlab
checkpoints; each with the preprocessing its weights declare. Nothing is downloaded."""
import pytest
import torch
import torchvision

from camlab.audit.model import load_audit_model
from camlab.errors import CamlabError


def test_torchvision_by_name_with_random_weights_uses_its_weights_crop_and_imagenet_names():
    model = load_audit_model("resnet18", "random")
    assert model.preprocessing.crop_fraction == pytest.approx(224 / 256) and model.preprocessing.size == 224
    assert model.loaded.class_names[1] == "goldfish"
    assert "transforms" in model.preprocessing.describe()


def test_a_state_dict_with_its_architecture_named_loads_whatever_the_file_is_called(tmp_path):
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "finetuned.pt")
    model = load_audit_model("resnet18", str(tmp_path / "finetuned.pt"))
    assert model.loaded.class_names == ["0", "1", "2"]
    x = torch.rand(1, 3, 224, 224)
    assert torch.equal(model.loaded.model.fc.weight, net.fc.weight) and model.loaded.model(x).shape == (1, 3)


def test_timm_by_name_with_a_weights_file_made_here_reads_its_data_config(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False, num_classes=5)
    torch.save(net.state_dict(), tmp_path / "timm_resnet18.pt")
    model = load_audit_model("timm:resnet18", str(tmp_path / "timm_resnet18.pt"))
    assert model.preprocessing.crop_fraction == pytest.approx(net.pretrained_cfg["crop_pct"])
    assert model.preprocessing.mean == pytest.approx(net.pretrained_cfg["mean"])
    x = torch.rand(2, 3, 224, 224)
    mean, std = torch.tensor(model.preprocessing.mean).view(1, 3, 1, 1), torch.tensor(model.preprocessing.std).view(1, 3, 1, 1)
    assert torch.allclose(model.loaded.model(x), net.eval()((x - mean) / std), atol=1e-5)
    with pytest.raises(CamlabError, match="timm has no model 'resnet1800'"):
        load_audit_model("timm:resnet1800", "random")


def test_shipped_checkpoints_and_bad_specs(tmp_path):
    model = load_audit_model("masked_vgg")
    assert model.preprocessing.crop_fraction == 1.0 and model.loaded.class_names[0] == "circle"
    with pytest.raises(CamlabError, match="not a torchvision architecture"):
        load_audit_model(str(tmp_path / "missing.pt"))
    with pytest.raises(CamlabError, match="unknown torchvision architecture"):
        from camlab.models import load_model_file

        torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "w.pt")
        load_model_file(tmp_path / "w.pt", architecture="resnet1800")
