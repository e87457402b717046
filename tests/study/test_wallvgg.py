"""The walled VGG: its unseen region, the shipped checkpoints (the walled VGGs and ResNets) and their cards,
checkpoint errors."""
import json

import pytest
import torch

from camlab.errors import CamlabError
from camlab.study.data import CLASSES, StackedDataset
from camlab.study.robustness import robustness_report
from camlab.study.train import accuracy
from camlab.study.wallvgg import WallVGG, WallVGGConfig, load_checkpoint, masked_vgg, save_checkpoint
from camlab.walls import unseen_region
from tests.paths import MODELS

SHIPPED = ["masked_vgg", "baseline_vgg", "guided_vgg", "masked_resnet", "baseline_resnet"]


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


def test_shipped_masked_model_cannot_see_its_unseen_band():
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
    with pytest.raises(CamlabError, match="name its architecture .* in the file name"):
        load_checkpoint(bare)
    with pytest.raises(CamlabError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("name", ["masked_vgg", "baseline_vgg", "masked_resnet", "baseline_resnet"])
def test_shipped_models_stay_in_distribution_under_the_metrics_perturbations(name):
    """The card's robustness numbers are re-measured exactly, and meet the readouts issue's targets."""
    card = json.loads((MODELS / f"{name}.json").read_text())
    measured = robustness_report(load_checkpoint(MODELS / f"{name}.pt").model, images=card["robustness"]["images"])
    assert measured["accuracy"] == pytest.approx(card["robustness"]["accuracy"], abs=1e-6)
    assert card["test_accuracy"] >= 0.95
    assert measured["accuracy"]["scaled x0.5"] >= 0.9
    featureless = measured["featureless max probability"]
    for kind in ("black", "mid-grey", "mean image", "uniform colours", "backgrounds without objects"):
        assert featureless[kind]["max"] <= 0.3, kind
    if name.startswith("baseline_"):  # it sees both tiles, so either alone is enough
        assert min(measured["accuracy"]["top tile blank"], measured["accuracy"]["bottom tile blank"]) >= 0.9


def test_shipped_models_load_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_checkpoint("masked_vgg").architecture == "masked_vgg"
    monkeypatch.setenv("CAMLAB_MODELS", str(tmp_path))  # a folder of one's own
    save_checkpoint(tmp_path / "tiny.pt", masked_vgg(width=1 / 64, input_size=32, masked_rows=1, hidden=8),
                    "masked_vgg", list("abcdefgh"))
    assert load_checkpoint("tiny").input_size == 32
