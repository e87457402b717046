"""ROAD against grad-cam's ROAD on the same images and maps: ``camlab-bench-road`` times grad-cam's
``ROADCombined`` (SciPy's sparse LU per image and removal, on the CPU) and camlab's batched
imputation on the images' device, for the shipped masked_vgg on generated test images with the
random smooth control as the map (no ties, so both remove the same share), and reports how far the
two combined scores differ without noise (camlab removes round(p% of pixels), grad-cam the pixels
at or above an interpolated percentile: on 224x224 it removes one pixel more at 20% and 40%) and how
far camlab's imputation at its default tolerance is from grad-cam's SciPy solution on the first
image's nine most-relevant-first removals.

    camlab-bench-road --images 8 --out docs/results/road_speed.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..metrics.controls import control_maps, tie_ranks, top_count
from ..metrics.faithfulness import ROAD_REMOVALS, road, road_noise
from ..metrics.imputation import linear_imputation
from ..study.data import StackedDataset
from ..study.wallvgg import load_checkpoint


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-bench-road``: camlab's ROAD against grad-cam's on the same maps."""
    from pytorch_grad_cam.metrics import road as grad_cam_road
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--model", default="masked_vgg")
    parser.add_argument("--chunk", type=int, default=16, help="imputations camlab solves at once")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=None, help="a JSON file for the numbers")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model = load_checkpoint(args.model, device).model
    data = StackedDataset("stack-shapes", "test", length=args.images)
    images = torch.stack([data[i][0] for i in range(args.images)]).to(device)
    with torch.no_grad():
        classes = model(images).argmax(1)
    maps = control_maps("random", images[:, 0], seed=0)
    ranks = tie_ranks(maps, 1)
    targets = [ClassifierOutputSoftmaxTarget(int(c)) for c in classes]
    noise = road_noise(images, torch.arange(args.images))

    road(model, images[:1], maps[:1], classes[:1], ranks=ranks[:, :1], noise=noise[:1], chunk=args.chunk)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    ours = road(model, images, maps, classes, ranks=ranks, noise=noise, chunk=args.chunk)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    camlab_seconds = time.perf_counter() - started

    started = time.perf_counter()
    theirs = grad_cam_road.ROADCombined(list(ROAD_REMOVALS))(images, maps.cpu().numpy(), targets, model)
    grad_cam_seconds = time.perf_counter() - started

    quiet = road(model, images, maps, classes, ranks=ranks, chunk=args.chunk)["road_combined"].cpu()
    original = grad_cam_road.NoisyLinearImputer.__init__.__defaults__ or ()
    grad_cam_road.NoisyLinearImputer.__init__.__defaults__ = (0.0, *original[1:])  # grad-cam without noise
    try:
        quiet_theirs = grad_cam_road.ROADCombined(list(ROAD_REMOVALS))(images, maps.cpu().numpy(), targets, model)
    finally:
        grad_cam_road.NoisyLinearImputer.__init__.__defaults__ = original
    imputations = 2 * len(ROAD_REMOVALS) * args.images
    size = maps[0].numel()
    removed = torch.stack([ranks[0, 0] < top_count(p, size) for p in ROAD_REMOVALS]).view(-1, *maps.shape[1:])
    ours_filled = linear_imputation(images[:1].expand(len(ROAD_REMOVALS), -1, -1, -1), removed).cpu()
    imputer = grad_cam_road.NoisyLinearImputer(noise=0.0)
    theirs_filled = torch.stack([imputer(images[0].cpu(), (~mask).float().cpu()) for mask in removed])
    report = {
        "images": args.images, "model": args.model, "device": str(device), "removals": list(ROAD_REMOVALS),
        "imputations": imputations, "camlab_seconds": round(camlab_seconds, 2),
        "grad_cam_seconds": round(grad_cam_seconds, 2),
        "camlab_ms_per_imputation": round(1000 * camlab_seconds / imputations, 1),
        "grad_cam_ms_per_imputation": round(1000 * grad_cam_seconds / imputations, 1),
        "speed_up": round(grad_cam_seconds / camlab_seconds, 2),
        "combined_camlab_mean": round(float(ours["road_combined"].mean()), 4),
        "combined_grad_cam_mean": round(float(theirs.mean()), 4),
        "combined_max_difference_without_noise": float(abs(quiet - torch.as_tensor(quiet_theirs)).max()),
        "imputation_max_pixel_difference": float((ours_filled - theirs_filled).abs().max()),
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
