"""Means of every metric over a dataset, per method: what the Benchmark page and the evaluation CLI show.

Metric groups (formulas in :mod:`camlab.metrics`):
  leakage      the map's share inside a region the model cannot use (``leakage_l2``, ``leakage_mass``,
               ``leakage_peak``, ``leakage_above_half``) on the display map, and at the target layer's
               resolution (``layer_leakage_*``); only when a region is given
  confidence   Average Drop (lower is better), Increase in Confidence and Average Gain (higher)
  insdel       insertion AUC (higher is better) and deletion AUC (lower is better), RISE protocol
  sanity       cascading randomisation (Adebayo et al.) on the first batch: mean Spearman rho between
               the trained model's map and the map after randomising the top layer (``sanity_rho_top``)
               and after randomising every layer (``sanity_rho_all``); a faithful method falls towards 0.
               One explanation per parametrised layer and method, so not part of the default set.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .device import model_device
from .engine import CAMEngine
from .metrics.faithfulness import confidence_metrics, insertion_deletion
from .metrics.leakage import layer_region_shares, region_shares
from .metrics.sanity import cascading_randomisation
from .registry import get_method

METRIC_GROUPS = ("leakage", "confidence", "insdel", "sanity")
DEFAULT_GROUPS = ("leakage", "confidence", "insdel")


@dataclass
class Evaluation:
    """Means over ``images`` images: ``table[method][metric]``; ``curves[method]["insertion" |
    "deletion"]`` the mean RISE curves when the insdel group ran."""

    table: dict[str, dict[str, float]]
    curves: dict[str, dict[str, list[float]]]
    images: int


def evaluate(model: nn.Module, layer: str | None, dataset: Dataset, methods, metric_groups=DEFAULT_GROUPS,
             batch_size: int = 16, region: torch.Tensor | None = None, space: str = "pixel", steps: int = 16,
             progress: bool = True, on_batch: Callable[[int, int], None] | None = None,
             options: Mapping[str, Mapping[str, object]] | None = None) -> Evaluation:
    """Means over ``dataset`` (items ``(image, label)``) per method; the maps explain each image's
    top class. ``region`` is the (H, W) mask leakage is measured in; ``on_batch(done, total)``
    reports progress to a UI."""
    engine = CAMEngine(model, layer)
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    curve_sums: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    sanity: dict[str, dict[str, float]] = {}
    count = 0
    device = model_device(model)
    for images, _ in tqdm(DataLoader(dataset, batch_size=batch_size), desc="evaluate", disable=not progress):
        images = images.to(device)
        result = engine.explain(images, methods, options=options)
        for method in methods:
            cam = result[method]
            values: dict[str, torch.Tensor] = {}
            if "leakage" in metric_groups and region is not None:
                values.update({f"leakage_{k}": v for k, v in region_shares(cam.display, region).items()})
                if not get_method(method).pixel_space:
                    values.update({f"layer_leakage_{k}": v for k, v in layer_region_shares(cam.raw, region).items()})
            if "confidence" in metric_groups:
                conf = confidence_metrics(model, images, cam.display, result.classes, space)
                values.update({k: conf[k] for k in ("average_drop", "increase_in_confidence", "average_gain")})
            if "insdel" in metric_groups:
                curves = insertion_deletion(model, images, cam.display, result.classes, steps)
                values.update({k: curves[k] for k in ("insertion_auc", "deletion_auc")})
                for kind in ("insertion", "deletion"):
                    total = curves[f"{kind}_curve"].sum(dim=0)
                    curve_sums[method][kind] = curve_sums[method].get(kind, 0) + total
            if "sanity" in metric_groups and method not in sanity:  # first batch only: see the docstring
                cascade = cascading_randomisation(model, images, method, result.layer, result.classes)
                sanity[method] = {"sanity_rho_top": cascade[0][1], "sanity_rho_all": cascade[-1][1]}
            for key, value in values.items():
                sums[method][key] += float(value.sum())
            sums[method]["seconds_per_image"] += cam.total_seconds
        count += len(images)
        if on_batch is not None:
            on_batch(count, len(dataset))
    table = {m: {**{k: v / count for k, v in row.items()}, **sanity.get(m, {})} for m, row in sums.items()}
    curves = {m: {kind: (total / count).tolist() for kind, total in row.items()} for m, row in curve_sums.items()}
    return Evaluation(table, curves, count)


def to_rows(results: dict) -> tuple[list[str], list[list]]:
    """A header and one row per method, for CSV files and tables."""
    metrics = list(dict.fromkeys(k for row in results.values() for k in row))
    return ["method", *metrics], [[m, *(results[m].get(k, float("nan")) for k in metrics)] for m in results]


def to_markdown(results: dict) -> str:
    """A Markdown table of :func:`to_rows`, three decimals."""
    header, rows = to_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join([row[0], *(f"{v:.3f}" for v in row[1:])]) + " |" for row in rows]
    return "\n".join(lines)
