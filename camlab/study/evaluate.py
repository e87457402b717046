"""Evaluate methods on a shipped (or any camlab) model over a generated split; write CSV and Markdown.

    camlab-evaluate --model models/masked_vgg.pt --data stack-shapes --methods all --metrics all
    camlab-evaluate --model models/baseline_vgg.pt --region-from models/masked_vgg.pt

Metric groups and their columns: see :mod:`camlab.evaluation`. Leakage is measured in the model's
own unseen region, or in that of ``--region-from`` (to compare an unwalled twin on the same band).

Several processes share the images (gloo on CPU, NCCL with one GPU per process) and write the table
one process writes; the report says how many computed it:

    python -m torch.distributed.run --nproc_per_node=2 -m camlab.study.evaluate --model models/masked_vgg.pt
"""
from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

import torch

from ..device import launched_processes
from ..errors import CamlabError
from ..evaluation import comparison_rows, comparisons_markdown, evaluate, to_markdown, to_rows
from ..metrics.controls import COVERAGES, TIE_ORDERS
from ..metrics.faithfulness import MASKING_SPACES, REMOVAL_FILLS
from ..metrics.sanity import RANDOMISATION_INITS, SMOOTH_SAMPLES
from ..readouts import DEFAULT_GROUPS, METRIC_GROUPS, ReadoutConfig
from ..registry import REGISTRY
from ..reliability import RESAMPLES, reliability, reliability_markdown, reliability_rows
from ..walls import unseen_region
from .data import CLASSES, SPLITS, VARIANTS, StackedDataset
from .wallvgg import load_checkpoint


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-evaluate``: every readout and control over a dataset, as CSV and Markdown."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/masked_vgg.pt")
    parser.add_argument("--data", default="stack-shapes", choices=VARIANTS)
    parser.add_argument("--split", default="test", choices=tuple(SPLITS))
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=["all"])
    parser.add_argument("--metrics", nargs="+", default=["default"], choices=("all", "default", *METRIC_GROUPS),
                        help="default: leakage confidence coverage insdel localisation; all adds distribution and sanity")
    parser.add_argument("--region-from", default=None, metavar="CHECKPOINT",
                        help="measure leakage in this model's unseen region (default: the evaluated model's own)")
    parser.add_argument("--space", default="pixel", choices=MASKING_SPACES)
    parser.add_argument("--steps", type=int, default=16, help="insertion/deletion steps")
    parser.add_argument("--coverages", type=float, nargs="+", default=list(COVERAGES),
                        help="top-k%% coverages for Average Drop at equal area")
    parser.add_argument("--deletion-fill", default="black", choices=REMOVAL_FILLS)
    parser.add_argument("--insertion-start", default="blur", choices=REMOVAL_FILLS)
    parser.add_argument("--tie-orders", type=int, default=TIE_ORDERS,
                        help="random orders of tied pixels that AD@k, insertion and deletion average over")
    parser.add_argument("--randomisation", default="cascading", choices=("cascading", "independent"),
                        help="sanity: layers randomised cumulatively from the output, or one at a time")
    parser.add_argument("--randomisation-init", default="noise", choices=RANDOMISATION_INITS,
                        help="sanity: noise at each parameter's scale, or the layer's own reset_parameters")
    parser.add_argument("--smooth-samples", type=int, default=SMOOTH_SAMPLES,
                        help="sanity: noisy copies each Smooth MPRT map is averaged over (Quantus uses 50)")
    parser.add_argument("--no-controls", action="store_true", help="skip the control maps and comparisons")
    parser.add_argument("--resamples", type=int, default=RESAMPLES,
                        help="bootstrap resamples (images and tie orders) of the reliability table; 0 skips it")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", default=None, help="path prefix for .csv and .md (default results/<model>-<data>)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    args = parser.parse_args(argv)
    try:
        with launched_processes(args.device) as device:
            _evaluate(args, device)
    except CamlabError as exc:  # a bad model, data or option: its message, not a traceback
        raise SystemExit(f"camlab-evaluate: {exc}") from exc


def check_classes_match(class_names: list[str], model_name: str) -> None:
    """The generated data's labels index :data:`CLASSES`: a model with other classes (an ImageNet
    model, a checkpoint trained on other data) would be scored against the wrong labels."""
    if list(class_names) != list(CLASSES):
        shown = ", ".join(class_names[:4]) + (", …" if len(class_names) > 4 else "")
        raise CamlabError(f"{model_name} predicts {len(class_names)} classes ({shown}), not the generated data's "
                          f"{len(CLASSES)} ({', '.join(CLASSES)}) in that order; its readouts on this data would be "
                          "measured against the wrong labels")


def _evaluate(args: argparse.Namespace, device: torch.device) -> None:
    loaded = load_checkpoint(args.model, device)
    check_classes_match(loaded.class_names, loaded.name)
    methods = list(REGISTRY) if args.methods == ["all"] else args.methods
    groups = {"all": METRIC_GROUPS, "default": DEFAULT_GROUPS}.get(args.metrics[0], tuple(args.metrics))
    size = loaded.input_size
    region_model = load_checkpoint(args.region_from).model if args.region_from else loaded.model
    region = unseen_region(region_model, (3, size, size)).to(device)
    data = StackedDataset(args.data, args.split, size=size, length=args.images, masks=True)  # for localisation
    config = ReadoutConfig(tuple(methods), groups, tuple(args.coverages), args.steps, args.space, args.deletion_fill,
                           args.insertion_start, controls=not args.no_controls, tie_orders=args.tie_orders,
                           sanity_independent=args.randomisation == "independent",
                           sanity_init=args.randomisation_init, sanity_smooth_samples=args.smooth_samples)
    outcome = evaluate(loaded.model, loaded.default_layer, data, config, args.batch_size,
                       region if region.any() else None)
    if outcome.processes > 1 and torch.distributed.get_rank() != 0:
        return  # rank 0 writes the one report
    out = Path(args.out or f"results/{loaded.name}-{args.data}")
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix, (header, rows) in (("", to_rows(outcome.table)), ("-comparisons", comparison_rows(outcome))):
        with out.with_name(out.name + suffix).with_suffix(".csv").open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows])
    markdown = (f"{loaded.name} on {args.data}/{args.split}, {outcome.images} images, masking space {args.space}, "
                f"deletion to {args.deletion_fill}, insertion from {args.insertion_start}, "
                f"ties in {args.tie_orders} random order{'s' if args.tie_orders > 1 else ''}; "
                f"computed by {outcome.processes} process{'es' if outcome.processes > 1 else ''}\n\n"
                + to_markdown(outcome.table))
    if outcome.comparisons:
        markdown += "\n\nAgainst the controls (difference ± 95% half-width; ✓ beats the control):\n\n"
        markdown += comparisons_markdown(outcome)
    if outcome.comparisons and args.resamples:
        report = reliability(outcome, args.resamples, seed=0)
        with out.with_name(out.name + "-reliability").with_suffix(".csv").open("w", newline="") as handle:
            header, rows = reliability_rows(report)
            csv.writer(handle).writerows([header, *rows])
        markdown += (f"\n\nReliability over {args.resamples} bootstrap resamples of the images and their tie orders "
                     "(% of resamples in which the method is better than the control; decided: at least 95% or at most "
                     "5%; rank ρ: Spearman of the methods' means in a resample with their means on all images):\n\n"
                     + reliability_markdown(report))
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)

if __name__ == "__main__":
    main()
