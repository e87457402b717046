"""Drop/Increase/Gain and RISE insertion/deletion on models whose evidence is known."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.metrics.faithfulness import confidence_metrics, insertion_deletion
from tests.nets import QuadrantModel, TinyNet


def test_constant_map_of_ones_gives_zero_drop_increase_and_gain():
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(4, 3, 16, 16)
    classes = model(images).argmax(1)
    scores = confidence_metrics(model, images, torch.ones(4, 16, 16), classes)
    for key in ("average_drop", "increase_in_confidence", "average_gain"):
        assert float(scores[key].abs().max()) == 0, key
    dark = confidence_metrics(model, images, torch.zeros(4, 16, 16), classes, space="normalized")
    assert torch.isfinite(dark["average_drop"]).all()
    with pytest.raises(CamlabError, match="unknown masking space"):
        confidence_metrics(model, images, torch.ones(4, 16, 16), classes, space="logit")


def test_insertion_and_deletion_reward_the_map_that_points_at_the_evidence():
    checkerboard = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float()
    images = checkerboard.expand(2, 3, 16, 16).clone()
    classes = torch.zeros(2, dtype=torch.long)
    right = torch.zeros(2, 16, 16)
    right[:, :8, :8] = 1
    wrong = 1 - right
    good = insertion_deletion(QuadrantModel(), images, right, classes, steps=8)
    bad = insertion_deletion(QuadrantModel(), images, wrong, classes, steps=8)
    assert (good["deletion_auc"] < bad["deletion_auc"]).all()
    assert (good["insertion_auc"] > bad["insertion_auc"]).all()
    clean = QuadrantModel()(images).softmax(1)[:, 0]
    assert torch.allclose(good["deletion_curve"][:, 0], clean) and torch.allclose(good["insertion_curve"][:, -1], clean)
    assert good["insertion_curve"].shape == (2, 9)
