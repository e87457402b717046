"""``camlab-audit``: the readouts of every method against its controls on your model and images.

    camlab-audit --model models/masked_vgg.pt --images DIR --methods gradcam hirescam --out OUT
    camlab-audit --model resnet50 --weights DEFAULT --images photos.zip --out OUT
    camlab-audit --model timm:convnext_tiny --weights convnext.pt --images labels.csv --out OUT
    camlab-audit --model masked_vgg --images generated:stack-shapes/test --count 100 --wall bottom --out OUT

Images: a folder of class folders (named as the model's classes), a flat folder, a CSV of
file,label, a .zip of either, or generated:<variant>/<split> (which has object masks; give your own
images' masks with --masks). OUT receives report.html,
readouts.csv, summary.csv and manifest.json. Several processes share the images and write the
report one process writes:

    python -m torch.distributed.run --nproc_per_node=2 -m camlab.audit.cli --model ... --out OUT
"""
from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from ..device import launched_processes
from ..errors import CamlabError
from ..metrics.controls import TIE_ORDERS
from ..readouts import METRIC_GROUPS
from ..registry import REGISTRY
from .images import attach_masks, open_images
from .model import load_audit_model
from .report import write_audit
from .run import AUDIT_GROUPS, parse_wall, run_audit

FAST_METHODS = [name for name, info in REGISTRY.items() if not info.slow]


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-audit``: audit a model on a folder of images and write the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="torchvision name, timm:<name>, shipped name or checkpoint path")
    parser.add_argument("--weights", default=None,
                        help="torchvision/timm: DEFAULT (pretrained), random, or a state_dict file")
    parser.add_argument("--images", required=True, help="folder, .zip, .csv or generated:<variant>/<split>")
    parser.add_argument("--masks", default=None,
                        help="object masks for localisation: a folder or .zip mirroring the images' paths "
                             "(the mask of cat/001.jpg is cat/001.png, bright on the object)")
    parser.add_argument("--count", type=int, default=100, help="images of a generated split")
    parser.add_argument("--methods", nargs="+", default=["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"],
                        help=f"'fast' for every method but the per-channel ones; known: {', '.join(REGISTRY)}")
    parser.add_argument("--metrics", nargs="+", default=list(AUDIT_GROUPS), choices=METRIC_GROUPS)
    parser.add_argument("--layer", default=None, help="the layer CAMs read (default: the model's own)")
    parser.add_argument("--wall", default=None, help="bottom (the paper's 9/14), x0,y0,x1,y1, or a mask image")
    parser.add_argument("--wall-layer", default=None, help="the layer the wall is applied to (default: --layer)")
    parser.add_argument("--steps", type=int, default=16, help="insertion/deletion steps")
    parser.add_argument("--seed", type=int, default=0, help="the controls' and tie orders' seed")
    parser.add_argument("--tie-orders", type=int, default=TIE_ORDERS,
                        help="random orders of tied pixels that AD@k, insertion and deletion average over "
                             "(1 halves the insertion/deletion time)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", required=True, help="folder for report.html, readouts.csv, summary.csv, manifest.json")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--offline", action="store_true", help="never download weights")
    args = parser.parse_args(argv)
    try:
        with launched_processes(args.device) as device:
            _audit(args, device, "camlab-audit " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])))
    except CamlabError as exc:  # a bad model, image source or option: its message, not a traceback
        raise SystemExit(f"camlab-audit: {exc}") from exc


def _audit(args: argparse.Namespace, device: torch.device, command: str) -> None:
    model = load_audit_model(args.model, args.weights, device, allow_download=not args.offline)
    methods = FAST_METHODS if args.methods == ["fast"] else args.methods
    with tempfile.TemporaryDirectory(prefix="camlab-audit-") as work:
        images = open_images(args.images, model.loaded.class_names, model.preprocessing, Path(work), args.count)
        if args.masks:
            images = attach_masks(images, args.masks, model.preprocessing, Path(work))
        wall = None
        if args.wall:
            layer = args.wall_layer or args.layer or model.loaded.default_layer
            if layer is None:
                raise CamlabError("name the layer to wall with --wall-layer (this model has no default layer)")
            wall = parse_wall(args.wall, model.preprocessing.size, layer)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        result = run_audit(model, images, methods, groups=args.metrics, wall=wall, layer=args.layer, steps=args.steps,
                           seed=args.seed, tie_orders=args.tie_orders, batch_size=args.batch_size, device=device,
                           progress=rank == 0)
        if rank != 0:
            return  # rank 0 writes the one report
        paths = write_audit(result, args.out, command)
    print(f"camlab-audit: {result.evaluation.images} images, {len(images.skipped)} skipped, "
          f"{result.seconds:.0f} s; wrote {', '.join(str(p) for p in paths.values())}")
    for warning in result.warnings:
        print(f"warning: {warning}")


if __name__ == "__main__":
    main()
