"""Which readouts to trust on these images: how consistently each metric separates each method from
its control when the images are resampled and tied pixels are put in other orders.

An :class:`~camlab.evaluation.Evaluation` keeps every image's value (and, for metrics that rank
pixels, every tie order's). :func:`reliability` draws ``resamples`` bootstrap samples of the images
(with replacement, the same sample for every method and metric) and, per image of a sample, one of
the K tie orders (the same for the method and its control, as the pipeline pairs them); for each of
the evaluation's comparisons it counts the share of samples in which the method's mean is on the
better side of the control's. A metric is *reliable here* when those shares are near 0 or 1 (it
decides, whatever the sample) and the methods' order under it is stable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .checks import whole_number
from .errors import CamlabError
from .evaluation import Evaluation, comparison_pairs
from .metrics.catalog import Better, better
from .metrics.similarity import spearman

RESAMPLES = 1000
DECIDED = 0.95  # a share of samples at least this far from one half (or below 1 - it) decides


@dataclass(frozen=True)
class Reliability:
    """One metric against one control over the resamples: ``shares[method]`` the share of samples in
    which the method is better than the control; ``decided`` how many methods are decided (share
    >= :data:`DECIDED` or <= 1 - it) and ``beats`` how many decide for the method; ``rank_stability``
    the mean Spearman over samples between the methods' means and their means on all images (NaN
    with fewer than three methods); ``resamples`` and ``images``."""

    metric: str
    control: str
    shares: dict[str, float]
    decided: int
    beats: int
    rank_stability: float
    resamples: int
    images: int


def reliability(evaluation: Evaluation, resamples: int = RESAMPLES, seed: int = 0) -> list[Reliability]:
    """Every comparison of ``evaluation`` resampled (see the module docstring), one entry per
    (metric, control) in the order the comparisons first name them. All randomness from ``seed``."""
    resamples = whole_number("resamples", resamples, 1, 100_000)
    if not evaluation.comparisons:
        raise CamlabError("the evaluation compares nothing with a control (run it with controls)")
    count = evaluation.images
    generator = torch.Generator().manual_seed(whole_number("seed", seed, 0))
    samples = torch.randint(0, count, (resamples, count), generator=generator)
    picks = torch.rand(resamples, count, generator=generator)  # which tie order, per sample and image
    # (metric, control) -> method -> the method's and the control's (resamples,) means
    means: dict[tuple[str, str], dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    full: dict[tuple[str, str], dict[str, float]] = {}  # the methods' means over all images
    for method in evaluation.comparisons:
        for metric, control, pair in comparison_pairs(evaluation.per_image, evaluation.per_order, method,
                                                      evaluation.coverages):
            (method_values, method_orders), (control_values, control_orders) = pair
            means.setdefault((metric, control), {})[method] = (
                _sample_means(method_values, method_orders, samples, picks),
                _sample_means(control_values, control_orders, samples, picks))
            full.setdefault((metric, control), {})[method] = float(pair[0][0].double().mean())
    report = []
    for (metric, control), found in means.items():
        sign = -1.0 if better(metric) is Better.LOWER else 1.0
        shares = {m: float((sign * (ours - theirs) > 0).double().mean()) for m, (ours, theirs) in found.items()}
        decided = sum(share >= DECIDED or share <= 1 - DECIDED for share in shares.values())
        beats = sum(share >= DECIDED for share in shares.values())
        stability = math.nan
        if len(found) >= 3:
            ours = torch.stack([found[m][0] for m in found], 1)
            reference = torch.tensor([full[(metric, control)][m] for m in found], dtype=torch.float64)
            stability = float(spearman(ours, reference.expand_as(ours)).mean())
        report.append(Reliability(metric, control, shares, decided, beats, stability, resamples, count))
    return report


def _sample_means(values: torch.Tensor, per_order: torch.Tensor | None, samples: torch.Tensor,
                  picks: torch.Tensor) -> torch.Tensor:
    """The mean of per-image ``values`` in every sample, each image in the tie order ``picks`` draws
    for it when the metric ranks pixels (``per_order`` (N, K))."""
    if per_order is None:
        return values.double()[samples].mean(1)
    order = (picks * per_order.shape[1]).long().clamp(max=per_order.shape[1] - 1)
    return per_order.double()[samples, order.gather(1, samples)].mean(1)


def reliability_rows(report: list[Reliability]) -> tuple[list[str], list[list]]:
    """A header and one row per (metric, control): each method's share, decided, beats, rank stability."""
    methods = list(dict.fromkeys(m for entry in report for m in entry.shares))
    header = ["metric", "control", *methods, "decided", "beats", "methods", "rank_stability", "resamples", "images"]
    rows = [[e.metric, e.control, *(e.shares.get(m, math.nan) for m in methods), e.decided, e.beats, len(e.shares),
             e.rank_stability, e.resamples, e.images] for e in report]
    return header, rows


def reliability_markdown(report: list[Reliability]) -> str:
    """The table README and the report show: per metric and control, the share of resamples in which
    each method is better than the control (percent), how many methods it decides, and the stability
    of the methods' order."""
    methods = list(dict.fromkeys(m for entry in report for m in entry.shares))
    lines = ["| metric vs control | " + " | ".join(methods) + " | decided | rank ρ |",
             "|---" * (len(methods) + 3) + "|"]
    for e in report:
        cells = [f"{100 * e.shares[m]:.0f}" if m in e.shares else "—" for m in methods]
        rho = "—" if math.isnan(e.rank_stability) else f"{e.rank_stability:.2f}"
        lines.append(f"| {e.metric} vs {e.control} | " + " | ".join(cells) + f" | {e.decided}/{len(e.shares)} | {rho} |")
    return "\n".join(lines)
