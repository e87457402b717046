"""Run every method and metric over a dataset split; write CSV and Markdown, print the table.

    python -m camlab.evaluate --model models/masked_vgg.pt --data stack-shapes --methods all --metrics all

Metrics (means over images; formulas in camlab.metrics):
  leakage      dead-zone l2 ratio, mass leakage, peak-in-wall, wall pixels > 0.5, on the display map
               and on the raw layer-resolution map (``raw_`` prefix), for models with an unseen region
  confidence   Average Drop (lower is better), Increase in Confidence and Average Gain (higher)
  insdel       insertion AUC (higher is better) and deletion AUC (lower is better), RISE protocol
  sanity       cascading randomisation (Adebayo et al.) on the first batch: mean Spearman rho between
               the trained model's map and the map after randomising the top layer (``sanity_rho_top``)
               and after randomising every layer (``sanity_rho_all``); a faithful method falls towards 0.
               One explanation per parametrised layer and method, so not part of the default set.
"""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .data import StackedDataset
from .engine import CAMEngine
from .metrics import (MASKING_SPACES, cascading_randomisation, confidence_metrics, insertion_deletion, leakage,
                      raw_leakage)
from .models import load_checkpoint
from .registry import REGISTRY
from .walls import unseen_region

METRIC_GROUPS = ("leakage", "confidence", "insdel", "sanity")
DEFAULT_GROUPS = ("leakage", "confidence", "insdel")


@dataclass
class Evaluation:
    table: dict[str, dict[str, float]]  # {method: {metric: mean over images}}
    curves: dict[str, dict[str, list[float]]]  # {method: {"insertion"|"deletion": mean curve}}, if insdel ran
    images: int


def evaluate(model, layer: str | None, dataset, methods, metric_groups=DEFAULT_GROUPS, batch_size: int = 16,
             wall: torch.Tensor | None = None, space: str = "pixel", steps: int = 16,
             progress: bool = True, on_batch=None) -> Evaluation:
    """Means over ``dataset`` per method; ``on_batch(done, total)`` reports progress to a UI."""
    engine = CAMEngine(model, layer)
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    curve_sums: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    sanity: dict[str, dict[str, float]] = {}
    count = 0
    loader = DataLoader(dataset, batch_size=batch_size)
    device = next(model.parameters()).device
    for images, _ in tqdm(loader, desc="evaluate", disable=not progress):
        images = images.to(device)
        result = engine.explain(images, methods)
        for method in methods:
            cam = result[method]
            values: dict[str, torch.Tensor] = {}
            if "leakage" in metric_groups and wall is not None:
                values.update(leakage(cam.display, wall))
                if not REGISTRY[method].pixel_space:
                    values.update({f"raw_{k}": v for k, v in raw_leakage(cam.raw, wall).items()})
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
            sums[method]["seconds_per_image"] += (cam.seconds + result.shared_seconds)
        count += len(images)
        if on_batch is not None:
            on_batch(count, len(dataset))
    table = {m: {**{k: v / count for k, v in row.items()}, **sanity.get(m, {})} for m, row in sums.items()}
    curves = {m: {kind: (total / count).tolist() for kind, total in row.items()} for m, row in curve_sums.items()}
    return Evaluation(table, curves, count)


def to_rows(results: dict) -> tuple[list[str], list[list]]:
    metrics = list(dict.fromkeys(k for row in results.values() for k in row))
    return ["method", *metrics], [[m, *(results[m].get(k, float("nan")) for k in metrics)] for m in results]


def to_markdown(results: dict) -> str:
    header, rows = to_rows(results)
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    lines += ["| " + " | ".join([rows_i[0], *(f"{v:.3f}" for v in rows_i[1:])]) + " |" for rows_i in rows]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/masked_vgg.pt")
    parser.add_argument("--data", default="stack-shapes", choices=("stack-shapes", "stack-clutter"))
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=["all"])
    parser.add_argument("--metrics", nargs="+", default=["default"], choices=("all", "default", *METRIC_GROUPS),
                        help="default: leakage confidence insdel; all adds sanity")
    parser.add_argument("--space", default="pixel", choices=MASKING_SPACES)
    parser.add_argument("--steps", type=int, default=16, help="insertion/deletion steps")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=None, help="path prefix for .csv and .md (default results/<model>-<data>)")
    args = parser.parse_args(argv)
    loaded = load_checkpoint(args.model)
    methods = list(REGISTRY) if args.methods == ["all"] else args.methods
    groups = {"all": METRIC_GROUPS, "default": DEFAULT_GROUPS}.get(args.metrics[0], tuple(args.metrics))
    size = loaded.input_size
    zone = unseen_region(loaded.model, (3, size, size))
    walled_twin = Path(args.model).parent / "masked_vgg.pt"
    if not zone.any():  # an unwalled model is measured on its walled twin's band, for comparison
        zone = unseen_region(load_checkpoint(walled_twin).model, (3, size, size)) if walled_twin.exists() else None
    data = StackedDataset(args.data, args.split, size=size, length=args.images)
    results = evaluate(loaded.model, loaded.default_layer, data, methods, groups, args.batch_size, zone,
                       args.space, args.steps).table
    out = Path(args.out or f"results/{loaded.name}-{args.data}")
    out.parent.mkdir(parents=True, exist_ok=True)
    header, rows = to_rows(results)
    with out.with_suffix(".csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    markdown = (f"{loaded.name} on {args.data}/{args.split}, {args.images} images, masking space {args.space}\n\n"
                + to_markdown(results))
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    return results


if __name__ == "__main__":
    main()
