"""Which readouts to trust: comparisons resampled over images and tie orders."""
import math

import pytest
import torch

from camlab.errors import CamlabError
from camlab.evaluation import Evaluation, ReadoutConfig, evaluate
from camlab.reliability import reliability, reliability_markdown, reliability_rows
from camlab.study.data import StackedDataset
from camlab.study.wallvgg import masked_vgg

N = 60


def _evaluation(per_image: dict, per_order: dict) -> Evaluation:
    methods = [row for row in per_image if not row.startswith("control")]
    return Evaluation({}, {}, N, {m: ["compared"] for m in methods}, per_image=per_image, per_order=per_order)


def _fixed():
    generator = torch.Generator().manual_seed(1)
    random = torch.rand(N, generator=generator)
    clear = random + 0.5 + 0.05 * torch.randn(N, generator=generator)  # far better on insertion
    same = random[torch.randperm(N, generator=generator)]  # the control's values, shuffled: no better
    # Better in one tie order and as much worse in the other: its mean over the orders is the control's.
    split = torch.stack([random + 0.3, random - 0.3], 1)
    per_image = {"clear": {"insertion_auc": clear}, "same": {"insertion_auc": same},
                 "split": {"insertion_auc": split.mean(1)}, "control: random": {"insertion_auc": random}}
    per_order = {"split": {"insertion_auc": split}, "control: random": {"insertion_auc": torch.stack([random] * 2, 1)}}
    return _evaluation(per_image, per_order)


def test_a_clear_method_is_decided_a_shuffled_one_is_not_and_tie_orders_are_resampled():
    [entry] = reliability(_fixed(), resamples=400, seed=0)
    assert (entry.metric, entry.control, entry.resamples, entry.images) == ("insertion_auc", "random", 400, N)
    assert entry.shares["clear"] == 1.0
    assert 0.05 < entry.shares["same"] < 0.95
    # averaged over orders "split" ties the control exactly; drawn per image its mean wanders either way
    assert 0.05 < entry.shares["split"] < 0.95
    assert (entry.decided, entry.beats) == (1, 1)
    assert -1 <= entry.rank_stability <= 1


def test_lower_is_better_metrics_count_the_method_below_the_control():
    generator = torch.Generator().manual_seed(2)
    random = torch.rand(N, generator=generator)
    per_image = {"low": {"deletion_auc": random - 0.4}, "high": {"deletion_auc": random + 0.4},
                 "control: random": {"deletion_auc": random}}
    [entry] = reliability(_evaluation(per_image, {}), resamples=200)
    assert entry.shares == {"low": 1.0, "high": 0.0}
    assert (entry.decided, entry.beats) == (2, 1)
    assert math.isnan(entry.rank_stability)  # two methods have no order to speak of


def test_the_same_seed_gives_the_same_table_and_another_seed_moves_only_undecided_shares():
    first, again, other = (reliability(_fixed(), resamples=300, seed=s)[0] for s in (0, 0, 7))
    assert first == again
    assert other.shares["clear"] == first.shares["clear"] == 1.0
    assert other.shares["same"] != first.shares["same"]


def test_the_table_names_every_method_and_its_share_in_percent():
    report = reliability(_fixed(), resamples=100)
    header, rows = reliability_rows(report)
    assert header[:5] == ["metric", "control", "clear", "same", "split"]
    assert rows[0][2] == 1.0 and rows[0][header.index("methods")] == 3
    markdown = reliability_markdown(report)
    assert "| insertion_auc vs random | 100 |" in markdown and "1/3" in markdown


def test_an_evaluation_without_controls_or_with_bad_resamples_is_refused():
    with pytest.raises(CamlabError, match="compares nothing"):
        reliability(Evaluation({}, {}, N), resamples=10)
    for bad in (0, 2.5, "10", 10**6):
        with pytest.raises(CamlabError):
            reliability(_fixed(), resamples=bad)


def test_every_comparison_of_a_real_evaluation_is_resampled_with_its_tie_orders():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=32, length=6, masks=True)
    config = ReadoutConfig(("gradcam", "hirescam", "layercam"), ("confidence", "coverage", "insdel", "localisation"),
                           coverages=(20,), steps=4, tie_orders=2)
    outcome = evaluate(model, None, data, config, batch_size=3, progress=False)
    report = reliability(outcome, resamples=50)
    compared = {(c.metric, c.control) for found in outcome.comparisons.values() for c in found}
    assert {(e.metric, e.control) for e in report} == compared
    assert ("pointing_game", "random") in compared  # localisation has its control too
    for entry in report:
        assert set(entry.shares) == {"gradcam", "hirescam", "layercam"}
        assert all(0 <= share <= 1 for share in entry.shares.values())
