"""Means over a dataset: mean curves and the sanity group."""
import numpy as np
import pytest
import torch

from camlab.errors import CamlabError
from camlab.evaluation import ReadoutConfig, compare, evaluate, report_rows
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
    table = evaluate(model, None, data, ReadoutConfig(("gradcam", "randomcam"), ("sanity",)), batch_size=2,
                     progress=False).table
    keys = {f"sanity_{k}_{end}" for k in ("rank", "rank_raw", "ssim")
            for end in ("top", "all", "logit", "smooth_top", "smooth_all")} | {"sanity_emprt"}
    for method in ("gradcam", "randomcam"):
        assert set(table[method]) == keys | {"seconds_per_image"}
        assert all(-1 <= table[method][k] <= 1 for k in keys - {"sanity_emprt"})
        assert table[method]["sanity_emprt"] > -1
    # Random channel weights ignore the output layer, so randomising it leaves Random-CAM unchanged.
    assert table["randomcam"]["sanity_rank_top"] == pytest.approx(1.0)
    assert table["randomcam"]["sanity_ssim_top"] == pytest.approx(1.0, abs=1e-5)
    assert table["gradcam"]["sanity_rank_top"] < 0.99
    assert table["randomcam"]["sanity_rank_logit"] == pytest.approx(1.0)  # it never reads the class either


def test_evaluate_reports_mean_curves(masked):
    data = StackedDataset("stack-shapes", "test", size=224, length=4)
    outcome = evaluate(masked.model, masked.default_layer, data, ReadoutConfig(("gradcam",), ("insdel",), steps=4),
                       batch_size=2, progress=False)
    assert outcome.images == 4 and len(outcome.curves["gradcam"]["insertion"]) == 5
    assert np.trapezoid(outcome.curves["gradcam"]["insertion"], dx=0.25) == pytest.approx(
        outcome.table["gradcam"]["insertion_auc"], abs=1e-5)


def test_controls_run_through_the_same_metrics_and_every_method_is_compared_with_them():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=32, length=6)
    config = ReadoutConfig(("gradcam", "hirescam"), ("confidence", "coverage", "insdel"), coverages=(10, 50), steps=4)
    outcome = evaluate(model, None, data, config, batch_size=3, progress=False)
    assert list(outcome.table) == ["gradcam", "hirescam", "control: all-zero", "control: all-ones", "control: random"]
    # the image unchanged, though forwarded in another batch: some CPUs' kernels round by batch (1.8e-6 seen)
    assert outcome.table["control: all-ones"]["average_drop"] == pytest.approx(0, abs=1e-5)
    assert "average_drop@10" not in outcome.table["control: all-zero"]  # a constant map has no top 10%
    assert {"average_drop_matched", "average_drop@50", "insertion_auc"} <= set(outcome.table["gradcam"])
    assert set(outcome.curves) == {"gradcam", "hirescam", "control: random"}
    found = {(c.metric, c.control) for c in outcome.comparisons["gradcam"]}
    assert found == {("average_drop", "matched"), ("average_drop", "all-zero"), ("average_drop@10", "random"),
                     ("average_drop@50", "random"), ("insertion_auc", "random"), ("deletion_auc", "random")}
    for c in outcome.comparisons["hirescam"]:
        assert c.half_width >= 0
    header, rows = report_rows(outcome, {"model": "tiny", "images": 6})  # the Benchmark page's CSV
    assert header[:3] == ["model", "images", "method"] and "average_drop vs matched verdict" in header
    by_method = {row[2]: dict(zip(header, row)) for row in rows}
    verdict = next(c for c in outcome.comparisons["gradcam"] if (c.metric, c.control) == ("average_drop", "matched"))
    assert by_method["gradcam"]["average_drop vs matched difference"] == verdict.difference
    assert by_method["gradcam"]["average_drop vs matched verdict"] == ("beats" if verdict.beats else "does not beat")
    assert by_method["control: random"]["average_drop vs matched verdict"] == ""  # controls are not compared
    assert all(row[:2] == ["tiny", 6] for row in rows)
    with pytest.raises(CamlabError, match="ReadoutConfig"):
        evaluate(model, None, data, ["gradcam"], progress=False)


def test_a_comparison_beats_its_control_only_when_the_whole_interval_is_better():
    drop = torch.tensor([10.0, 12.0, 11.0, 9.0])
    clearly = compare("average_drop", "random", drop, drop + 30)
    assert clearly.beats and clearly.difference == pytest.approx(-30)
    assert not compare("average_drop", "random", drop, drop + torch.tensor([5.0, -5.0, 4.0, -4.0])).beats
    assert compare("insertion_auc", "random", drop + 30, drop).beats  # higher is better for insertion
    assert not compare("deletion_auc", "random", drop + 30, drop).beats


def test_per_image_values_labels_localisation_and_the_model_row_come_back_in_dataset_order():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=64, length=5, masks=True)
    config = ReadoutConfig(("gradcam",), ("localisation", "distribution"))
    outcome = evaluate(model, None, data, config, batch_size=2, progress=False)
    assert outcome.labels.tolist() == [data[i][1] for i in range(5)]
    assert outcome.per_image["gradcam"]["pointing_game"].shape == (5,)
    assert outcome.table["gradcam"]["relevance_mass"] == pytest.approx(
        float(outcome.per_image["gradcam"]["relevance_mass"].mean()))
    model_row = outcome.table["model"]
    assert model_row["modal_share_black"] == 1.0  # five black images are one image
    assert 0 < model_row["p_clean"] <= 1 and "class_black" not in model_row
    assert "model" not in outcome.comparisons


def test_ranked_metrics_average_the_tie_orders_report_their_spread_and_ignore_the_batching():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=32, length=4)
    config = ReadoutConfig(("hirescam",), ("coverage", "insdel"), coverages=(50,), steps=4, controls=False, tie_orders=3)
    outcomes = [evaluate(model, None, data, config, batch_size=size, progress=False) for size in (1, 4)]
    for outcome in outcomes:
        per_order = outcome.per_order["hirescam"]["insertion_auc"]
        assert per_order.shape == (4, 3)
        assert outcome.table["hirescam"]["insertion_auc"] == pytest.approx(float(per_order.mean()), abs=1e-6)
        assert outcome.table["hirescam"]["insertion_auc_order_sd"] == pytest.approx(
            float(per_order.double().mean(0).std()), abs=1e-9)
    # Each image's tie orders come from its index in the dataset, not from the batch around it.
    for key in ("insertion_auc", "deletion_auc", "average_drop@50"):
        assert torch.allclose(outcomes[0].per_order["hirescam"][key], outcomes[1].per_order["hirescam"][key], atol=1e-4)
    assert outcomes[0].table["hirescam"]["average_drop@50_order_sd"] > 0  # half of HiRes-CAM's map is tied zeros
    single = ReadoutConfig(("hirescam",), ("insdel",), steps=4, controls=False, tie_orders=1)
    assert "insertion_auc_order_sd" not in evaluate(model, None, data, single, progress=False).table["hirescam"]
    with pytest.raises(CamlabError, match="tie_orders must be a whole number"):
        ReadoutConfig(("hirescam",), tie_orders=0)


def test_independent_reset_randomisation_reports_the_top_and_the_first_layer_alone():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=32, length=2)
    config = ReadoutConfig(("gradcam",), ("sanity",), sanity_independent=True, sanity_init="reset")
    table = evaluate(model, None, data, config, batch_size=2, progress=False).table
    assert {"sanity_rank_top", "sanity_rank_first", "sanity_rank_logit"} <= set(table["gradcam"])
    assert "sanity_rank_all" not in table["gradcam"]
    with pytest.raises(CamlabError, match="sanity_init"):
        ReadoutConfig(("gradcam",), sanity_init="shuffle")
