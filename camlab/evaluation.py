"""Means of every metric over a dataset, per method and per control map, with paired comparisons that
say whether a method beats its controls: what the Benchmark page, ``camlab-evaluate`` and
``camlab-audit`` report. Each batch goes through the one readout pipeline,
:func:`camlab.readouts.compute_readouts`; this module batches, shards over processes and merges.

Metric groups (formulas in :mod:`camlab.metrics`, names and directions in :mod:`camlab.metrics.catalog`):
  leakage      the map's share inside a region the model cannot use (``leakage_l2``, ``leakage_mass``,
               ``leakage_peak``, ``leakage_above_half``) on the display map, and at the target layer's
               resolution (``layer_leakage_*``); only when a region is given
  confidence   Average Drop (lower is better), Increase in Confidence and Average Gain (higher), and
               the same for each method's matched control (``*_matched``: its own values at random
               smooth places, so the same coverage); ``map_mean``, the map's mean value (its coverage)
  coverage     Average Drop and Increase in Confidence with the map binarised to its top k% pixels
               (``average_drop@k``): methods compared at equal area
  insdel       insertion AUC (higher is better) and deletion AUC (lower is better), RISE protocol
  road         ROAD (Rong et al. 2022): the mean change in probability when 10-90% of the most
               (``road_morf``, lower is better) or least (``road_lerf``, higher) relevant pixels are
               filled by noisy linear imputation, and ``road_combined``; not a default group (slow)
  localisation pointing game, relevance mass and relevance rank accuracy on each image's object mask
               (datasets whose items carry one)
  occlusion    the model's Drop and Increase when the region's pixels are removed (deletion fill), per
               image, in the ``model`` row: 0 in a region the model provably ignores
  distribution the model's confidence on black, mean-colour, blurred, darkened and randomly masked
               versions of each image, and the share given one class there (the ``model`` row):
               whether the metrics' perturbations leave the model in distribution
  sanity       cascading randomisation (Adebayo et al.) on the first batch's first ``sanity_images``: Spearman (average ranks)
               between the trained model's map and the map after randomising the top layer (``_top``)
               and every layer (``_all``), on display maps (``sanity_rank``), signed raw maps
               (``sanity_rank_raw``), and SSIM of display maps (``sanity_ssim``); and the random-logit
               test (Sixt et al.), the same three between the maps of the explained class and of a
               random other class (``_logit``); Smooth MPRT (Hedström et al.), the same with every map
               averaged over noisy copies of the image (``_smooth_top``, ``_smooth_all``); and Efficient
               MPRT (``sanity_emprt``, higher is better), the relative rise of the map's histogram entropy
               when every layer is randomised. A method that explains this model falls towards 0 on the
               similarities. Not part of the default groups (slow).

Control rows (when ``controls`` is on): an all-zero map, an all-ones map and a random smooth map
(:mod:`camlab.metrics.controls`), through the same metrics. ``masked_modal_class_share`` is the share
of map-masked images predicted as their most common class: near 1, the masked images all collapse
to one class and Drop/Increase say more about the model than about the map.

Tie orders: AD@k, insertion and deletion rank pixels; pixels of equal value are ordered in
``config.tie_orders`` seeded random orders per image and the metric is their mean; the table's
``<metric>_order_sd`` is the standard deviation across the orders of the mean over the images.

Comparisons: per method, the paired per-image difference to a control with a 95% interval
(mean +- 1.96 standard errors); a method *beats* the control when the whole interval is on the
better side (:func:`comparison_pairs` says which control each metric has);
:func:`camlab.reliability.reliability` redoes them over resampled images and tie orders.
"""
from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .device import model_device
from .errors import CamlabError
from .metrics.catalog import ORDER_SD, Better, better
from .metrics.distribution import PERTURBATIONS, modal_share
from .metrics.faithfulness import scoring_copy
from .readouts import (
    CONTROL_ROWS,
    DEFAULT_GROUPS,
    METRIC_GROUPS,
    MODEL_ROW,
    ReadoutConfig,
    compute_readouts,
    order_spread,
)
from .reshape import Reshape

__all__ = ["CONTROL_ROWS", "DEFAULT_GROUPS", "METRIC_GROUPS", "Comparison", "Evaluation", "ReadoutConfig", "compare",
           "evaluate"]


@dataclass(frozen=True)
class Comparison:
    """A method against a control on one metric: the mean per-image difference (method - control),
    the half-width of its 95% interval, and whether the method is better over the whole interval."""

    metric: str
    control: str
    difference: float
    half_width: float
    beats: bool


@dataclass
class Evaluation:
    """Means over ``images`` images: ``table[row][metric]`` for methods, control rows and (with the
    distribution group) the ``model`` row; ``curves[row]["insertion" | "deletion"]`` the mean RISE
    curves; ``comparisons[method]``; ``per_image[row][metric]`` every image's value in dataset
    order; ``per_order[row][metric]`` (images, K) each tie order's value of the metrics that rank
    pixels; ``labels`` the dataset's labels and ``classes`` the explained (top) classes;
    :func:`camlab.reliability.reliability` resamples it."""

    table: dict[str, dict[str, float]]
    curves: dict[str, dict[str, list[float]]]
    images: int
    comparisons: dict[str, list[Comparison]] = field(default_factory=dict)
    processes: int = 1  # how many processes computed it (``torch.distributed.run``)
    per_image: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    classes: torch.Tensor | None = None
    per_order: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    coverages: tuple[float, ...] = ()  # the AD@k coverages measured (``config.coverages``)


def compare(metric: str, control: str, ours: torch.Tensor, theirs: torch.Tensor) -> Comparison:
    """A paired comparison of per-image values: mean difference, 95% half-width, and whether ours wins."""
    difference = ours.double() - theirs.double()
    mean = float(difference.mean())
    half_width = 1.96 * float(difference.std()) / math.sqrt(len(difference)) if len(difference) > 1 else math.inf
    lower = better(metric) is Better.LOWER
    beats = mean + half_width < 0 if lower else mean - half_width > 0
    return Comparison(metric, control, mean, half_width, beats)


def dataset_length(dataset: Dataset) -> int:
    """How many items ``dataset`` has; a clear error for an iterable-style dataset without a length."""
    if not isinstance(dataset, Sized):
        raise CamlabError(f"the dataset must be a map-style Dataset with a length, got {type(dataset).__name__}")
    return len(dataset)


def evaluate(model: nn.Module, layer: str | None, dataset: Dataset, config: ReadoutConfig, batch_size: int = 16,
             region: torch.Tensor | None = None, progress: bool = True,
             on_batch: Callable[[int, int], None] | None = None, reshape: Reshape = None) -> Evaluation:
    """Every readout of ``config`` (:func:`camlab.readouts.compute_readouts`) over ``dataset``
    (items ``(image, label)``, or ``(image, label, mask)`` with the object's mask for localisation),
    in batches; means, curves and comparisons with the controls. The maps explain each image's top
    class. ``region`` is the (H, W) mask leakage is measured in; ``on_batch(done, total)`` reports
    progress to a UI. The sanity group runs on the first batch only (it re-explains on randomised
    copies of the model).

    Under ``torch.distributed.run`` (process group initialised) process r computes the batches
    b with b mod world_size = r; every process returns the same Evaluation, equal to one process's."""
    if not isinstance(config, ReadoutConfig):
        raise CamlabError(f"config must be a camlab.readouts.ReadoutConfig, got {type(config).__name__}")
    rank, processes = _process_group()
    # per batch, so batches computed by several processes join in the order one process meets them
    values: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    orders: dict[int, dict[str, dict[str, torch.Tensor]]] = {}
    curve_sums: dict[int, dict[str, dict[str, torch.Tensor]]] = defaultdict(lambda: defaultdict(dict))
    labels: dict[int, dict[str, torch.Tensor]] = {}
    sanity: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = defaultdict(float)
    device = model_device(model)
    count = dataset_length(dataset)
    total_batches = math.ceil(count / batch_size)
    mine = range(rank, total_batches, processes)
    batches = [list(range(b * batch_size, min((b + 1) * batch_size, count))) for b in mine]
    loader = DataLoader(dataset, batch_sampler=batches)
    without_sanity = dataclasses.replace(config, groups=tuple(g for g in config.groups if g != "sanity"))
    scorer = None  # the metrics' copy of the model with batch norms folded, made on the first batch
    done, assigned = 0, sum(len(indices) for indices in batches)  # this process's images
    for item, batch in zip(tqdm(loader, desc="evaluate", disable=not progress or rank != 0), mine):
        images, label = item[0].to(device), item[1]
        masks = item[2].to(device) if len(item) > 2 else None
        scorer = scoring_copy(model, images[:1]) if scorer is None else scorer
        found = compute_readouts(model, images, config if batch == 0 else without_sanity, layer=layer,
                                 reshape=reshape, region=region, masks=masks, first_index=batch * batch_size,
                                 scorer=scorer)
        values[batch], orders[batch] = found.values, found.orders
        labels[batch] = {"labels": torch.as_tensor(label), "classes": found.classes}
        for row, kinds in found.curves.items():
            curve_sums[batch][row] = {kind: curve.sum(dim=0) for kind, curve in kinds.items()}
        sanity.update(found.sanity)
        for method, spent in found.seconds.items():
            seconds[method] += spent
        done += len(images)
        if on_batch is not None:
            on_batch(done, assigned)
    shards = _to_host({"values": values, "orders": orders, "curves": curve_sums, "labels": labels, "sanity": sanity,
                       "seconds": seconds})
    if processes > 1:
        gathered: list = [None] * processes
        torch.distributed.all_gather_object(gathered, shards)
    else:
        gathered = [shards]
    merged = _merge(gathered)
    if len(merged["values"]) != total_batches:
        raise CamlabError(f"{len(merged['values'])} of {total_batches} batches came back from {processes} processes")
    return _summarise(merged, count, config, processes)


def _process_group() -> tuple[int, int]:
    """The rank of this process and the number of processes when launched by ``torch.distributed.run``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _to_host(shards: object) -> object:
    """Plain dicts of CPU tensors: what travels between processes (one copy per batch, after the loop)."""
    if isinstance(shards, torch.Tensor):
        return shards.cpu()
    if isinstance(shards, dict):
        return {key: _to_host(value) for key, value in shards.items()}
    return shards


def _merge(gathered: list[dict]) -> dict:
    merged = {"values": {}, "orders": {}, "curves": {}, "labels": {}, "sanity": {}, "seconds": defaultdict(float)}
    for shard in gathered:
        merged["values"].update(shard["values"])
        merged["orders"].update(shard["orders"])
        merged["curves"].update(shard["curves"])
        merged["labels"].update(shard["labels"])
        merged["sanity"].update(shard["sanity"])
        for row, spent in shard["seconds"].items():
            merged["seconds"][row] += spent
    return merged


RANDOM_COMPARED = ("insertion_auc", "deletion_auc", "road_morf", "road_lerf", "road_combined", "pointing_game",
                   "relevance_mass", "relevance_rank")  # compared with the random map (as is AD@k)


def comparison_pairs(per_image: dict[str, dict[str, torch.Tensor]], per_order: dict[str, dict[str, torch.Tensor]],
                     row: str, coverages: Sequence[float],
                     ) -> list[tuple[str, str, tuple[tuple[torch.Tensor, torch.Tensor | None], ...]]]:
    """What a method row is compared with: ``(metric, control, ((ours, ours per order), (theirs, theirs
    per order)))`` per comparison, per-image values (N,) and, for metrics that rank pixels, each tie
    order's (N, K) (else None). Average Drop against the method's matched control and the all-zero
    map; AD@k, insertion, deletion, ROAD and localisation against the random map."""
    if row in CONTROL_ROWS or row == MODEL_ROW:
        return []
    metrics, orders = per_image[row], per_order.get(row, {})
    random, zeros = per_image.get("control: random", {}), per_image.get("control: all-zero", {})
    random_orders = per_order.get("control: random", {})
    pairs = []
    if "average_drop_matched" in metrics:
        pairs.append(("average_drop", "matched", ((metrics["average_drop"], None), (metrics["average_drop_matched"], None))))
    if "average_drop" in metrics and "average_drop" in zeros:
        pairs.append(("average_drop", "all-zero", ((metrics["average_drop"], None), (zeros["average_drop"], None))))
    for key in [f"average_drop@{k:g}" for k in coverages] + list(RANDOM_COMPARED):
        if key in metrics and key in random:
            pairs.append((key, "random", ((metrics[key], orders.get(key)), (random[key], random_orders.get(key)))))
    return pairs


def _summarise(merged: dict[str, Any], count: int, config: ReadoutConfig, processes: int) -> Evaluation:
    batches = sorted(merged["values"])
    rows = list(dict.fromkeys(row for b in batches for row in merged["values"][b]))
    per_image = {row: {key: torch.cat([merged["values"][b][row][key] for b in batches])
                       for key in merged["values"][batches[0]].get(row, {})} for row in rows}
    per_order = {row: {key: torch.cat([merged["orders"][b][row][key] for b in batches])
                       for key in merged["orders"][batches[0]].get(row, {})} for row in rows}
    per_order = {row: found for row, found in per_order.items() if found}
    sanity, seconds = merged["sanity"], merged["seconds"]
    table: dict[str, dict[str, float]] = {}
    for row, metrics in per_image.items():
        table[row] = {k: float(v.float().mean()) for k, v in metrics.items()
                      if k != "masked_class" and not k.startswith("class_")}
        if "masked_class" in metrics:
            table[row]["masked_modal_class_share"] = modal_share(metrics["masked_class"])
        if row == MODEL_ROW and "class_clean" in metrics:
            table[row].update({f"modal_share_{kind}": modal_share(metrics[f"class_{kind}"])
                               for kind in ("clean", *PERTURBATIONS)})
        table[row].update({key + ORDER_SD: float(order_spread(found)) for key, found in per_order.get(row, {}).items()
                           if found.shape[1] > 1})
        table[row].update(sanity.get(row, {}))
    for row in sanity:  # sanity alone still gives a row per method
        table.setdefault(row, dict(sanity[row]))
    for row, spent in seconds.items():
        table.setdefault(row, {})["seconds_per_image"] = spent / count
    comparisons: dict[str, list[Comparison]] = {}
    if config.controls:
        for row in per_image:
            found = [compare(metric, control, *(values for values, _ in pair))
                     for metric, control, pair in comparison_pairs(per_image, {}, row, config.coverages)]
            if found:  # metric groups without a control (sanity alone) compare nothing
                comparisons[row] = found
    curves = {}
    for row in rows:
        kinds = merged["curves"].get(batches[0], {}).get(row, {})
        if kinds:
            curves[row] = {kind: (torch.stack([merged["curves"][b][row][kind] for b in batches]).sum(0) / count).tolist()
                           for kind in kinds}
    labels = torch.cat([torch.as_tensor(merged["labels"][b]["labels"]) for b in batches])
    classes = torch.cat([merged["labels"][b]["classes"] for b in batches])
    return Evaluation(table, curves, count, comparisons, processes, per_image, labels, classes, per_order,
                      config.coverages)


def to_rows(results: dict) -> tuple[list[str], list[list]]:
    """A header and one row per method (then control), for CSV files and tables."""
    metrics = list(dict.fromkeys(k for row in results.values() for k in row))
    return ["method", *metrics], [[m, *(results[m].get(k, float("nan")) for k in metrics)] for m in results]


def to_markdown(results: dict) -> str:
    """A Markdown table of :func:`to_rows`, three decimals; a metric a row does not have is "—"."""
    header, rows = to_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join([row[0], *("—" if math.isnan(v) else f"{v:.3f}" for v in row[1:])]) + " |"
              for row in rows]
    return "\n".join(lines)


def comparison_rows(evaluation: Evaluation) -> tuple[list[str], list[list]]:
    """One row per (method, metric, control): difference, interval half-width, verdict."""
    rows = [[method, c.metric, c.control, c.difference, c.half_width, "beats" if c.beats else "does not beat"]
            for method, found in evaluation.comparisons.items() for c in found]
    return ["method", "metric", "control", "difference", "ci95_half_width", "verdict"], rows


def report_rows(evaluation: Evaluation, settings: dict[str, object]) -> tuple[list[str], list[list]]:
    """One self-describing table: per row the run's ``settings`` (model, data, images, …), the
    method or control and its metrics, and per comparison the difference, the 95% half-width and the
    verdict, so a CSV read on its own says how it was made and what it concluded."""
    header, rows = to_rows(evaluation.table)
    columns = list(dict.fromkeys(f"{c.metric} vs {c.control}" for found in evaluation.comparisons.values()
                                 for c in found))
    verdicts = {method: {f"{c.metric} vs {c.control}": [c.difference, c.half_width, "beats" if c.beats else
                                                        "does not beat"] for c in found}
                for method, found in evaluation.comparisons.items()}
    blank = ["", "", ""]
    full = [*settings, *header, *(f"{column} {part}" for column in columns for part in
                                  ("difference", "ci95_half_width", "verdict"))]
    return full, [[*settings.values(), *row, *(v for column in columns for v in verdicts.get(row[0], {}).get(column, blank))]
                  for row in rows]


def comparisons_markdown(evaluation: Evaluation) -> str:
    """Per method, one cell per comparison: the difference to the control +- its 95% half-width,
    marked ✓ when the method beats the control over the whole interval, ✗ otherwise."""
    columns = list(dict.fromkeys(f"{c.metric} vs {c.control}" for found in evaluation.comparisons.values()
                                 for c in found))
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for method, found in evaluation.comparisons.items():
        cells = {f"{c.metric} vs {c.control}": f"{c.difference:+.3g} ± {c.half_width:.2g} {'✓' if c.beats else '✗'}"
                 for c in found}
        lines.append(f"| {method} | " + " | ".join(cells.get(col, "—") for col in columns) + " |")
    return "\n".join(lines)
