"""The Training page's computations: plain vs guided gradients of two models on one image, on a
shared scale, and the interpretable-gradients sweep's table (no Streamlit)."""
from __future__ import annotations

import csv
from dataclasses import dataclass

import torch

from ..metrics.similarity import gradient_distance
from ..resources import results_dir
from ..study.gradients import energy_share
from .state import ModelEntry, explain_cached

DISPLAY_QUANTILE = 0.99


@dataclass
class GradientView:
    """One model's plain and guided-backprop input gradients for one image and class: their
    magnitude maps ((H, W), largest absolute value over colour channels), the distance between them,
    and the share of each one's energy on the object's pixels (None without object masks)."""

    maps: dict[str, torch.Tensor]
    distance: float
    object_energy: dict[str, float] | None


def gradient_views(entries: list[ModelEntry], image: torch.Tensor, target: int,
                   objects: torch.Tensor | None) -> tuple[list[GradientView], dict[str, float]]:
    """A view per model, and per method the top of one colour range shared by every model, so a
    sharper gradient shows as sharper, not as rescaled noise. The top is the 99th percentile of the
    models' values (above it the colour saturates), as captum's visualisations clip outliers: a
    handful of extreme pixels would otherwise leave every map nearly black."""
    views = []
    for entry in entries:
        result = explain_cached(entry, image, ["gradient", "guided_backprop"], target=target)
        raws = {m: result[m].raw for m in ("gradient", "guided_backprop")}
        energy = None
        if objects is not None:
            mask = objects.to(image.device)[None].float()
            energy = {m: float(energy_share(raw, mask)[0]) for m, raw in raws.items()}
        views.append(GradientView({m: raw.abs().amax(dim=1)[0] for m, raw in raws.items()},
                                  float(gradient_distance(raws["gradient"], raws["guided_backprop"])), energy))
    tops = {m: max(float(torch.quantile(v.maps[m].flatten().float(), DISPLAY_QUANTILE)) for v in views) or 1.0
            for m in ("gradient", "guided_backprop")}
    return views, tops


def guided_sweep() -> list[dict[str, float | str]]:
    """The λ sweep's rows (``camlab.study.gradients``'s CSV), or [] when it has not been run."""
    sweep = results_dir() / "guided_sweep.csv"
    if not sweep.exists():
        return []
    with sweep.open() as handle:
        return [{k: (v if k == "checkpoint" else float(v)) for k, v in row.items()} for row in csv.DictReader(handle)]
