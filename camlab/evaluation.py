"""Means of every metric over a dataset, per method and per control map, with paired comparisons that
say whether a method beats its controls: what the Benchmark page and ``camlab-evaluate`` report.

Metric groups (formulas in :mod:`camlab.metrics`):
  leakage      the map's share inside a region the model cannot use (``leakage_l2``, ``leakage_mass``,
               ``leakage_peak``, ``leakage_above_half``) on the display map, and at the target layer's
               resolution (``layer_leakage_*``); only when a region is given
  confidence   Average Drop (lower is better), Increase in Confidence and Average Gain (higher), and
               the same for each method's matched control (``*_matched``: its own values at random
               smooth places, so the same coverage); ``map_mean``, the map's mean value (its coverage)
  coverage     Average Drop and Increase in Confidence with the map binarised to its top k% pixels
               (``average_drop@k``): methods compared at equal area
  insdel       insertion AUC (higher is better) and deletion AUC (lower is better), RISE protocol
  sanity       cascading randomisation (Adebayo et al.) on the first batch: Spearman (average ranks)
               between the trained model's map and the map after randomising the top layer (``_top``)
               and every layer (``_all``), on display maps (``sanity_rank``), signed raw maps
               (``sanity_rank_raw``), and SSIM of display maps (``sanity_ssim``). A method that
               explains this model falls towards 0. Not part of the default groups (slow).

Control rows (when ``controls`` is on): an all-zero map, an all-ones map and a random smooth map
(:mod:`camlab.metrics.controls`), through the same metrics. ``masked_modal_class_share`` is the share
of map-masked images predicted as their most common class: near 1, the masked images all collapse
to one class and Drop/Increase say more about the model than about the map.

Comparisons: per method, the paired per-image difference to a control with a 95% interval
(mean +- 1.96 standard errors); a method *beats* the control when the whole interval is on the
better side.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .device import model_device
from .engine import CAMEngine
from .errors import CamlabError
from .metrics.controls import COVERAGES, check_coverage, control_maps, matched_control
from .metrics.faithfulness import CONFIDENCE, confidence_metrics, fixed_coverage_metrics, insertion_deletion, probabilities
from .metrics.leakage import layer_region_shares, region_shares
from .metrics.sanity import cascading_randomisation
from .registry import get_method
from .reshape import Reshape

METRIC_GROUPS = ("leakage", "confidence", "coverage", "insdel", "sanity")
DEFAULT_GROUPS = ("leakage", "confidence", "coverage", "insdel")
CONTROL_ROWS = {"control: all-zero": "zeros", "control: all-ones": "ones", "control: random": "random"}
LOWER_IS_BETTER = ("average_drop", "deletion_auc")


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
    """Means over ``images`` images: ``table[row][metric]`` for methods and control rows;
    ``curves[row]["insertion" | "deletion"]`` the mean RISE curves; ``comparisons[method]``."""

    table: dict[str, dict[str, float]]
    curves: dict[str, dict[str, list[float]]]
    images: int
    comparisons: dict[str, list[Comparison]] = field(default_factory=dict)
    processes: int = 1  # how many processes computed it (``torch.distributed.run``)


def compare(metric: str, control: str, ours: torch.Tensor, theirs: torch.Tensor) -> Comparison:
    difference = ours.double() - theirs.double()
    mean = float(difference.mean())
    half_width = 1.96 * float(difference.std()) / math.sqrt(len(difference)) if len(difference) > 1 else math.inf
    lower = any(metric.startswith(name) for name in LOWER_IS_BETTER)
    beats = mean + half_width < 0 if lower else mean - half_width > 0
    return Comparison(metric, control, mean, half_width, beats)


def evaluate(model: nn.Module, layer: str | None, dataset: Dataset, methods: Sequence[str],
             metric_groups: Sequence[str] = DEFAULT_GROUPS, batch_size: int = 16, region: torch.Tensor | None = None,
             space: str = "pixel", steps: int = 16, progress: bool = True,
             on_batch: Callable[[int, int], None] | None = None,
             options: Mapping[str, Mapping[str, object]] | None = None, controls: bool = True,
             coverages: Sequence[float] = COVERAGES, deletion_fill: str = "black", insertion_start: str = "blur",
             seed: int = 0, reshape: Reshape = None) -> Evaluation:
    """Means over ``dataset`` (items ``(image, label)``) per method and control; the maps explain
    each image's top class. ``region`` is the (H, W) mask leakage is measured in; ``on_batch(done,
    total)`` reports progress to a UI. See the module docstring for groups, controls and comparisons.

    Under ``torch.distributed.run`` (process group initialised) process r computes the batches
    b with b mod world_size = r; every process returns the same Evaluation, equal to one process's."""
    unknown = sorted(set(metric_groups) - set(METRIC_GROUPS))
    if unknown:
        raise CamlabError(f"unknown metric group(s) {', '.join(unknown)}; choose from {', '.join(METRIC_GROUPS)}")
    coverages = [check_coverage(k) for k in coverages]
    engine = CAMEngine(model, layer, reshape=reshape)
    faithful = {"confidence", "coverage", "insdel"} & set(metric_groups)
    rank, processes = _process_group()
    # per batch, so batches computed by several processes join in the order one process meets them
    values: dict[int, dict[str, dict[str, torch.Tensor]]] = defaultdict(lambda: defaultdict(dict))
    curve_sums: dict[int, dict[str, dict[str, torch.Tensor]]] = defaultdict(lambda: defaultdict(dict))
    sanity: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = defaultdict(float)
    device = model_device(model)
    total_batches = math.ceil(len(dataset) / batch_size)
    mine = range(rank, total_batches, processes)
    batches = [range(b * batch_size, min((b + 1) * batch_size, len(dataset))) for b in mine]
    loader = DataLoader(dataset, batch_sampler=batches)
    done, assigned = 0, sum(len(indices) for indices in batches)  # this process's images
    for batch, (images, _) in zip(mine, tqdm(loader, desc="evaluate", disable=not progress or rank != 0)):
        images = images.to(device)
        result = engine.explain(images, methods, options=options)
        classes = result.classes
        placement_seed = seed + batch * batch_size  # one random placement per batch, shared by every control
        rows = {m: result[m].display for m in methods}
        if controls and faithful:
            like = next(iter(rows.values()))
            rows.update({name: control_maps(kind, like, placement_seed) for name, kind in CONTROL_ROWS.items()})
        clean = probabilities(model, images, classes) if faithful else None
        for row, maps in rows.items():
            is_method = row in result.maps
            store = values[batch][row]
            if "leakage" in metric_groups and region is not None and is_method:
                store.update({f"leakage_{key}": value for key, value in region_shares(maps, region).items()})
                if not get_method(row).pixel_space:
                    store.update({f"layer_leakage_{key}": value
                                  for key, value in layer_region_shares(result[row].raw, region).items()})
            if "confidence" in metric_groups:
                store["map_mean"] = maps.flatten(1).mean(1)  # the map's coverage, which Drop rewards
                conf = confidence_metrics(model, images, maps, classes, space, clean=clean)
                store.update({key: conf[key] for key in (*CONFIDENCE, "masked_class")})
                if controls and is_method:
                    matched = confidence_metrics(model, images, matched_control(maps, placement_seed), classes, space,
                                                 clean=clean)
                    store.update({f"{key}_matched": matched[key] for key in CONFIDENCE})
            constant = row in ("control: all-zero", "control: all-ones")  # no ordering to binarise or sweep
            if "coverage" in metric_groups and not constant:
                store.update(fixed_coverage_metrics(model, images, maps, classes, coverages, space, clean=clean))
            if "insdel" in metric_groups and not constant:
                curves = insertion_deletion(model, images, maps, classes, steps, deletion_fill=deletion_fill,
                                            insertion_start=insertion_start, clean=clean)
                for kind in ("insertion", "deletion"):
                    store[f"{kind}_auc"] = curves[f"{kind}_auc"]
                    curve_sums[batch][row][kind] = curves[f"{kind}_curve"].sum(dim=0)
            if "sanity" in metric_groups and is_method and batch == 0:  # first batch only (slow)
                cascade = cascading_randomisation(model, images, row, result.layer, classes, reshape=reshape)
                sanity[row] = {f"sanity_{key}_{end}": cascade[index][key] for end, index in (("top", 0), ("all", -1))
                               for key in ("rank", "rank_raw", "ssim")}
            if is_method:
                seconds[row] += result[row].total_seconds
        done += len(images)
        if on_batch is not None:
            on_batch(done, assigned)
    shards = _to_host({"values": values, "curves": curve_sums, "sanity": sanity, "seconds": seconds})
    if processes > 1:
        gathered: list = [None] * processes
        torch.distributed.all_gather_object(gathered, shards)
    else:
        gathered = [shards]
    merged = _merge(gathered)
    if len(merged["values"]) != total_batches:
        raise CamlabError(f"{len(merged['values'])} of {total_batches} batches came back from {processes} processes")
    return _summarise(merged, len(dataset), controls, coverages, processes)


def _process_group() -> tuple[int, int]:
    """This process's rank and the number of processes when launched by ``torch.distributed.run``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _to_host(shards):
    """Plain dicts of CPU tensors: what travels between processes (one copy per batch, after the loop)."""
    if isinstance(shards, torch.Tensor):
        return shards.cpu()
    if isinstance(shards, dict):
        return {key: _to_host(value) for key, value in shards.items()}
    return shards


def _merge(gathered: list[dict]) -> dict:
    merged = {"values": {}, "curves": {}, "sanity": {}, "seconds": defaultdict(float)}
    for shard in gathered:
        merged["values"].update(shard["values"])
        merged["curves"].update(shard["curves"])
        merged["sanity"].update(shard["sanity"])
        for row, spent in shard["seconds"].items():
            merged["seconds"][row] += spent
    return merged


def _summarise(merged, count, controls, coverages, processes) -> Evaluation:
    batches = sorted(merged["values"])
    rows = list(dict.fromkeys(row for b in batches for row in merged["values"][b]))
    per_image = {row: {key: torch.cat([merged["values"][b][row][key] for b in batches])
                       for key in merged["values"][batches[0]].get(row, {})} for row in rows}
    sanity, seconds = merged["sanity"], merged["seconds"]
    table: dict[str, dict[str, float]] = {}
    for row, metrics in per_image.items():
        table[row] = {k: float(v.float().mean()) for k, v in metrics.items() if k != "masked_class"}
        if "masked_class" in metrics:
            table[row]["masked_modal_class_share"] = float(metrics["masked_class"].bincount().max()) / count
        table[row].update(sanity.get(row, {}))
        if row in seconds:
            table[row]["seconds_per_image"] = seconds[row] / count
    for row in sanity:  # sanity alone still gives a row per method
        table.setdefault(row, dict(sanity[row]))
    comparisons: dict[str, list[Comparison]] = {}
    if controls:
        random, zeros = per_image.get("control: random", {}), per_image.get("control: all-zero", {})
        for row, metrics in per_image.items():
            if row in CONTROL_ROWS:
                continue
            found = []
            if "average_drop_matched" in metrics:
                found.append(compare("average_drop", "matched", metrics["average_drop"], metrics["average_drop_matched"]))
            if "average_drop" in zeros:
                found.append(compare("average_drop", "all-zero", metrics["average_drop"], zeros["average_drop"]))
            for key in [f"average_drop@{k:g}" for k in coverages] + ["insertion_auc", "deletion_auc"]:
                if key in metrics and key in random:
                    found.append(compare(key, "random", metrics[key], random[key]))
            if found:  # metric groups without a control (sanity alone) compare nothing
                comparisons[row] = found
    curves = {}
    for row in rows:
        kinds = merged["curves"].get(batches[0], {}).get(row, {})
        if kinds:
            curves[row] = {kind: (sum(merged["curves"][b][row][kind] for b in batches) / count).tolist()
                           for kind in kinds}
    return Evaluation(table, curves, count, comparisons, processes)


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
