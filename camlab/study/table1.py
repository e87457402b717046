"""Reproduce Table 1 of "CAM-based methods can see through walls" on camlab's own models and data.

    camlab-table1 --images 100
    camlab-table1 --methods all       # also the sampled methods (an hour or more on a small CPU)

For each method, model and dataset: mean and standard deviation over images of the leakage
||S in the unseen region||_2 / ||S||_2, S the display map (CAMs: ReLU, upsampled, min-max; pixel
attributions: largest magnitude over colours, min-max). The unseen
region is the masked model's, as computed by ``camlab.walls.unseen_region``; the unwalled baseline
is measured on the same band for comparison.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..engine import CAMEngine
from ..metrics.leakage import l2_share
from ..walls import unseen_region
from .data import StackedDataset
from .wallvgg import load_checkpoint

TABLE_METHODS = ("gradcam", "hirescam", "scorecam", "gradcam++", "ablationcam", "xgradcam", "eigencam", "layercam",
                 "gradcamelementwise", "eigengradcam", "fem", "kpcacam", "shapleycam", "finercam", "fullgrad",
                 "gradient", "guided_backprop", "refinecam")
# Rows of README's table measured with --methods: one forward (and backward) per sample or channel
# each, too slow for the default run (and its test) on a CPU.
SAMPLED_METHODS = ("smoothgradcam++", "iscam", "sscam", "integrated_gradients", "smoothgrad")


def leakage_table(model_paths: Sequence[str], datasets: Sequence[str], images: int, batch_size: int = 16,
                  methods: Sequence[str] = TABLE_METHODS,
                    progress: bool = True) -> dict:
    """{(model, dataset): {method: (mean, std)}}, in the unseen region of the first (walled) model."""
    loaded = [load_checkpoint(p) for p in model_paths]
    size = loaded[0].input_size
    region = unseen_region(loaded[0].model, (3, size, size))
    if not region.any():
        raise SystemExit(f"{loaded[0].name} has no unseen region; list the walled model first")
    table = {}
    for entry in loaded:
        engine = CAMEngine(entry.model, entry.default_layer)
        for dataset in datasets:
            ratios = {m: [] for m in methods}
            data = StackedDataset(dataset, "test", size=size, length=images)
            loader = DataLoader(data, batch_size=batch_size)
            for batch, _ in tqdm(loader, desc=f"{entry.name} on {dataset}", disable=not progress):
                result = engine.explain(batch, methods)
                for m in methods:
                    ratios[m].append(l2_share(result[m].display, region))
            table[(entry.name, dataset)] = {
                m: (float(torch.cat(r).mean()), float(torch.cat(r).std())) for m, r in ratios.items()
            }
    return table


def to_markdown(table: dict, methods: Sequence[str] = TABLE_METHODS) -> str:
    """The leakage table as README's Markdown."""
    columns = list(table)
    header = "| method | " + " | ".join(f"{model} / {data}" for model, data in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for m in methods:
        cells = [f"{table[c][m][0]:.3f} ± {table[c][m][1]:.3f}" for c in columns]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-table1``: the paper's Table 1 on the shipped models and data."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["models/masked_vgg.pt", "models/baseline_vgg.pt"])
    parser.add_argument("--data", nargs="+", default=["stack-shapes", "stack-clutter"])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=list(TABLE_METHODS),
                        help="default: every method but the sampled ones, 'all' adds " + ", ".join(SAMPLED_METHODS))
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    methods = [*TABLE_METHODS, *SAMPLED_METHODS] if args.methods == ["all"] else args.methods
    markdown = to_markdown(leakage_table(args.models, args.data, args.images, methods=methods), methods)
    print(markdown)
    if args.out:
        Path(args.out).write_text(markdown + "\n")


if __name__ == "__main__":
    main()
