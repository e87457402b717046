"""The one readout pipeline: it reproduces the tables recorded from the two implementations it
replaced (``evaluate``'s own loop and the app's ``faithfulness``, commit de1b7cc, same seeds), and
fills each group from what it is given.

Those implementations ordered tied pixels by position (a stable descending sort); the pipeline
orders them at random. With its tie ranks replaced by that positional order it reproduces them: to
1e-5 for shares, probabilities and AUCs, to 0.01 points for the percentages (a Drop is
100 (p - o) / p: on this untrained tiny model p is 0.13, so the 1e-6 float noise a probability
carries between machines and batch compositions becomes 1e-3 points)."""
import json

import pytest
import torch

from camlab.engine import explain
from camlab.errors import CamlabError
from camlab.metrics.catalog import METRICS, readout_key
from camlab.readouts import CONTROL_ROWS, MODEL_ROW, ReadoutConfig, compute_readouts, merged_rows
from camlab.study.data import StackedDataset
from camlab.study.wallvgg import masked_vgg
from tests.paths import ROOT

REFERENCE = json.loads((ROOT / "tests" / "data" / "readouts_reference.json").read_text())


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=3).eval()
    data = StackedDataset("stack-shapes", "test", size=64, length=6)
    region = torch.zeros(64, 64, dtype=torch.bool)
    region[40:] = True
    return model, data, region


def tolerance(key: str) -> float:
    """0.01 points for a percentage, 1e-5 for the rest (curves of probabilities included)."""
    return 1e-5 if key.endswith("_curve") or readout_key(key).metric.high != 100 else 1e-2


@pytest.fixture
def ties_by_position(monkeypatch):
    """The recorded implementations' tie rule: one order, equal pixels in position order."""
    def by_position(maps, orders, seed, indices):
        return maps.flatten(1).argsort(dim=1, descending=True, stable=True).argsort(dim=1)[None].int()
    monkeypatch.setattr("camlab.readouts.tie_ranks", by_position)


def test_batches_reproduce_the_recorded_evaluation_table(world, ties_by_position):
    model, data, region = world
    config = ReadoutConfig(("gradcam", "hirescam", "layercam"), ("leakage", "confidence", "coverage", "insdel"),
                           coverages=(10, 50), steps=4, seed=5)
    sums: dict = {}
    for first in (0, 3):  # the recorded run's batches of 3
        images = torch.stack([data[i][0] for i in range(first, first + 3)])
        found = compute_readouts(model, images, config, region=region, first_index=first)
        for row, metrics in found.values.items():
            for key, value in metrics.items():
                sums.setdefault(row, {}).setdefault(key, []).append(value)
    expected = REFERENCE["evaluate"]["table"]
    assert set(sums) == set(expected)
    for row, metrics in expected.items():
        for key, value in metrics.items():
            if key in ("seconds_per_image", "masked_modal_class_share"):
                continue
            assert float(torch.cat(sums[row][key]).float().mean()) == pytest.approx(value, abs=tolerance(key)), (row, key)


def test_one_image_reproduces_the_apps_recorded_readouts(world, ties_by_position):
    model, data, _ = world
    image = data[1][0]
    result = explain(model, image[None], ["gradcam", "hirescam"])
    config = ReadoutConfig(("gradcam", "hirescam"), ("confidence", "coverage", "insdel"), coverages=(10, 20), steps=4)
    rows = merged_rows(compute_readouts(model, image[None], config, explanation=result))
    expected = REFERENCE["app_image_1"]
    assert set(expected) <= set(rows)
    for row, metrics in expected.items():
        for key, value in metrics.items():
            assert rows[row][key] == pytest.approx(value, abs=tolerance(key)), (row, key)


def test_groups_fill_only_what_they_are_given_and_every_key_is_registered(world):
    model, data, region = world
    images = torch.stack([data[i][0] for i in range(2)])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[:, :20, :20] = True
    config = ReadoutConfig(("gradcam",), ("leakage", "localisation", "occlusion", "distribution"), steps=4)
    without = compute_readouts(model, images, config)  # no region, no masks: leakage and localisation skipped
    assert set(without.values) == {MODEL_ROW}
    found = compute_readouts(model, images, config, region=region, masks=masks)
    assert {"leakage_l2", "pointing_game", "relevance_rank"} <= set(found.values["gradcam"])
    assert set(found.values["control: random"]) == {"pointing_game", "relevance_mass", "relevance_rank"}
    assert "control: all-zero" not in found.values  # a constant map has no peak or ranks
    assert {"p_clean", "p_black", "class_masked", "occlusion_drop"} <= set(found.values[MODEL_ROW])
    assert "occlusion_drop" not in without.values[MODEL_ROW]  # no region, nothing to remove
    for row in found.values.values():
        for key in row:
            if not key.startswith("class_"):
                info = readout_key(key).metric
                assert all(info.low - 1e-6 <= float(v) <= info.high + 1e-6 for v in row[key]), key
    assert len(METRICS) >= 30


def test_stages_report_progress_and_bad_configurations_are_refused(world):
    model, data, _ = world
    seen = []
    config = ReadoutConfig(("gradcam",), ("confidence", "insdel"), steps=2)
    compute_readouts(model, data[0][0][None], config, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for bad, match in ((dict(methods=()), "at least one"), (dict(methods=("nocam",)), "unknown CAM method"),
                       (dict(methods=("gradcam",), groups=("faith",)), "unknown metric group"),
                       (dict(methods=("gradcam",), coverages=(0,)), "percentage"),
                       (dict(methods=("gradcam",), steps=2.5), "whole number"),
                       (dict(methods=("gradcam",), deletion_fill="grey"), "deletion fill"),
                       (dict(methods=("gradcam",), options={"gradcam": {"power": 2}}), "no option"),
                       (dict(methods=("gradcam",), sanity_smooth_samples=0), "sanity_smooth_samples"),
                       (dict(methods=("gradcam",), sanity_smooth_samples=2.5), "whole number"),
                       (dict(methods=("gradcam",), sanity_smooth_noise=float("inf")), "finite"),
                       (dict(methods=("gradcam",), sanity_init="zeros"), "unknown sanity_init"),
                       (dict(methods=("gradcam",), tie_orders=0), "tie_orders"),
                       (dict(methods=("gradcam",), road_noise=2.0), "road_noise")):
        with pytest.raises(CamlabError, match=match):
            ReadoutConfig(**bad)
    assert list(CONTROL_ROWS) == ["control: all-zero", "control: all-ones", "control: random"]


def test_evaluate_scores_with_batch_norms_folded_and_gets_the_unfolded_numbers(world):
    from camlab.evaluation import evaluate

    _, data, region = world
    torch.manual_seed(1)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=3, batch_norm=True)
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2)
    model.eval()
    config = ReadoutConfig(("gradcam", "hirescam"), ("leakage", "confidence", "coverage", "insdel"), steps=4)
    table = evaluate(model, None, data, config, batch_size=3, region=region, progress=False).table
    assert table["control: all-ones"]["increase_in_confidence"] == 0  # the image itself is no increase
    unfolded: dict = {}
    for first in (0, 3):
        images = torch.stack([data[i][0] for i in range(first, first + 3)])
        for row, metrics in compute_readouts(model, images, config, region=region, first_index=first).values.items():
            for key, value in metrics.items():
                unfolded.setdefault(row, {}).setdefault(key, []).append(value)
    for row, metrics in unfolded.items():
        for key, values in metrics.items():
            if key != "masked_class":
                assert table[row][key] == pytest.approx(float(torch.cat(values).float().mean()), abs=1e-4), (row, key)
