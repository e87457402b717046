"""Generated data, walled models, unseen regions, training, and the shipped checkpoints."""
import json
from pathlib import Path

import pytest
import torch

import camlab
from camlab.data import CLASSES, StackedDataset, generate_image, write_png_folder
from camlab.errors import CamlabError
from camlab.models import WallVGG, WallVGGConfig, load_checkpoint, load_torchvision, masked_vgg, save_checkpoint
from camlab.train import accuracy, interpretable_gradient_loss, mean_gradient_distance, train
from camlab.walls import unseen_region

MODELS = Path(__file__).resolve().parent.parent / "models"
SHIPPED = ["masked_vgg", "baseline_vgg", "guided_vgg"]


@pytest.mark.parametrize("variant", ["stack-shapes", "stack-clutter"])
def test_datasets_are_deterministic_and_shaped(variant):
    data = StackedDataset(variant, "test", length=5)
    image, label = data[3]
    again, label_again = StackedDataset(variant, "test", length=5)[3]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and 0 <= label < len(CLASSES)
    assert torch.equal(image, again) and label == label_again
    other_seed, _ = StackedDataset(variant, "test", length=5, seed=1)[3]
    other_split, _ = StackedDataset(variant, "train", length=5)[3]
    assert not torch.equal(image, other_seed) and not torch.equal(image, other_split)
    assert StackedDataset(variant, "val", size=96, length=2)[0][0].shape == (3, 96, 96)


def test_every_class_appears_and_bad_names_are_refused():
    labels = {generate_image("stack-shapes", "train", i, 32)[1] for i in range(200)}
    assert labels == set(range(len(CLASSES)))
    with pytest.raises(CamlabError, match="unknown dataset"):
        StackedDataset("stack-mix")
    with pytest.raises(CamlabError, match="unknown split"):
        StackedDataset("stack-shapes", "holdout")


def test_png_folder_for_browsing(tmp_path):
    paths = write_png_folder(tmp_path, count=3)
    assert [p.name.split("_")[0] for p in paths] == ["0000", "0001", "0002"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_unseen_region_of_the_paper_vgg_is_the_bottom_band():
    """The full-width paper model: the bottom 54 of 224 rows (the line at 224/1.32)."""
    model = masked_vgg(width=1.0).eval()
    zone = unseen_region(model)
    assert zone[170:].all() and not zone[:170].any()
    assert not unseen_region(WallVGG(WallVGGConfig(width=0.125, masked_rows=0))).any()


def test_walled_output_is_bit_identical_behind_the_wall_and_not_elsewhere():
    torch.manual_seed(0)
    model = masked_vgg(width=0.125, batch_norm=True).eval()
    zone = unseen_region(model)
    images = torch.rand(2, 3, 224, 224)
    behind = images.clone()
    behind[:, :, zone] = torch.rand_like(behind[:, :, zone])
    visible = images.clone()
    visible[:, :, 100:120] = torch.rand_like(visible[:, :, 100:120])
    with torch.no_grad():
        assert torch.equal(model(images), model(behind))
        assert not torch.allclose(model(images), model(visible))


def test_wall_weights_stay_zero_after_training_steps():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=2, batch_norm=True)
    data = StackedDataset("stack-shapes", "train", size=64, length=16)
    train(model, data, epochs=1, batch_size=8, lr=1e-2, seed=0, progress=False)
    weight = model.classifier[0].weight.view(model.classifier[0].out_features, -1, 4, 4)
    assert torch.count_nonzero(weight[:, :, 2:, :]) == 0
    assert torch.count_nonzero(weight[:, :, :2, :]) > 0


def test_guided_gradient_regulariser_reduces_the_gradient_distance():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=0, batch_norm=True, dropout=0.0)
    data = StackedDataset("stack-shapes", "train", size=64, length=32)
    before = mean_gradient_distance(model, data)
    images, labels = next(iter(torch.utils.data.DataLoader(data, batch_size=32)))
    loss, ce, dist = interpretable_gradient_loss(model.train(), images, labels, weight=1.0)
    assert torch.isclose(loss, ce + dist)
    train(model, data, epochs=4, batch_size=16, lr=1e-3, seed=0, guided_grad_reg=10.0, progress=False)
    after = mean_gradient_distance(model, data)
    assert after < before - 0.05


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_accuracy_matches_its_card(name):
    path = MODELS / f"{name}.pt"
    loaded = load_checkpoint(path)
    card = json.loads(path.with_suffix(".json").read_text())
    data = StackedDataset(card["data"]["dataset"], "test", length=card["data"]["test_size"],
                          seed=card["training"]["seed"])
    measured = accuracy(loaded.model, data)
    assert abs(measured - card["test_accuracy"]) <= 0.02
    assert path.stat().st_size < 20 * 2**20
    if name != "guided_vgg":
        assert measured >= 0.95


def test_shipped_masked_model_cannot_see_its_dead_zone():
    model = load_checkpoint(MODELS / "masked_vgg.pt").model
    zone = unseen_region(model)
    assert zone[170:].all() and not zone[:170].any()


def test_checkpoint_errors_are_clear(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CamlabError, match="not a PyTorch checkpoint"):
        load_checkpoint(junk)
    small = masked_vgg(width=0.0625)
    path = save_checkpoint(tmp_path / "small.pt", small, "masked_vgg", CLASSES)
    payload = torch.load(path, weights_only=True)
    payload["config"]["width"] = 0.125
    torch.save(payload, path)
    with pytest.raises(CamlabError, match="does not fit the architecture"):
        load_checkpoint(path)
    bare = tmp_path / "mystery.pt"
    torch.save({"w": torch.zeros(2, 2)}, bare)
    with pytest.raises(CamlabError, match="name the file after its architecture"):
        load_checkpoint(bare)
    with pytest.raises(CamlabError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_user_state_dict_and_torchscript_load(tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=3)
    torch.save(net.state_dict(), tmp_path / "resnet18_finetuned.pt")
    loaded = load_checkpoint(tmp_path / "resnet18_finetuned.pt")
    assert loaded.architecture == "resnet18" and len(loaded.class_names) == 3
    scripted = torch.jit.trace(masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval(), torch.rand(1, 3, 32, 32))
    scripted.save(str(tmp_path / "model.ts"))
    assert load_checkpoint(tmp_path / "model.ts").model(torch.rand(1, 3, 32, 32)).shape == (1, 8)
    with pytest.raises(CamlabError, match="TorchScript model: its layers cannot be hooked"):
        camlab.explain(load_checkpoint(tmp_path / "model.ts").model, torch.rand(1, 3, 32, 32), ["gradcam"])


def test_torchvision_weights_offline_give_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CamlabError, match="not available offline; put the file at"):
        load_torchvision("resnet18")
    random = load_torchvision("resnet18", pretrained=False)
    assert random.model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)
