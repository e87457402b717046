"""Means over a dataset: mean curves and the sanity group."""
import numpy as np
import pytest
import torch

from camlab.evaluation import evaluate
from camlab.study.data import StackedDataset
from camlab.study.wallvgg import load_checkpoint, masked_vgg
from tests.paths import MODELS


@pytest.fixture(scope="module")
def masked():
    return load_checkpoint(MODELS / "masked_vgg.pt")


def test_evaluate_sanity_group_reports_cascading_randomisation_on_the_first_batch():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=32, length=4)
    table = evaluate(model, None, data, ["gradcam", "randomcam"], ("sanity",), batch_size=2, progress=False).table
    for method in ("gradcam", "randomcam"):
        assert set(table[method]) == {"seconds_per_image", "sanity_rho_top", "sanity_rho_all"}
        assert -1 <= table[method]["sanity_rho_all"] <= 1
    # Random channel weights ignore the output layer, so randomising it leaves Random-CAM unchanged.
    assert table["randomcam"]["sanity_rho_top"] == pytest.approx(1.0)
    assert table["gradcam"]["sanity_rho_top"] < 0.99


def test_evaluate_reports_mean_curves(masked):
    data = StackedDataset("stack-shapes", "test", size=224, length=4)
    outcome = evaluate(masked.model, masked.default_layer, data, ["gradcam"], ("insdel",),
                       batch_size=2, steps=4, progress=False)
    assert outcome.images == 4 and len(outcome.curves["gradcam"]["insertion"]) == 5
    assert np.trapezoid(outcome.curves["gradcam"]["insertion"], dx=0.25) == pytest.approx(
        outcome.table["gradcam"]["insertion_auc"], abs=1e-5)
