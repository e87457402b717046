r"""How interpretable is a model's plain input gradient? Measured on held-out images, per model:

- ``distance``: 1 - cosine similarity between d(true-class logit)/d(input) and the guided-backprop
  gradient, per image (mean and standard deviation) — what the interpretable-gradients regulariser lowers;
- ``object_energy``: the share of the gradient's energy (squared values, summed over colour channels)
  that falls on the object's pixels, which the generator knows — a sharpness measure: a gradient
  that looks at the object scores high. ``object_area`` (the objects' share of the pixels) is what a
  gradient spread evenly would score, the control;
- ``accuracy`` on the whole test split.

    python -m camlab.study.gradients models/baseline_vgg.pt models/guided_vgg.pt results/sweep/*.pt \
        --out docs/results/guided_sweep.csv
"""
from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..device import model_device
from ..modes import eval_mode
from .data import StackedDataset
from .train import accuracy, guided_targets, input_gradients
from .wallvgg import load_checkpoint

FIELDS = ("checkpoint", "lambda", "accuracy", "distance_mean", "distance_std", "object_energy_gradient",
          "object_energy_guided", "object_area", "images")


def energy_share(gradients: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
    """Per image, the share of sum over channels of gradient^2 on the object pixels."""
    energy = gradients.pow(2).sum(dim=1)
    return (energy * objects).flatten(1).sum(1) / energy.flatten(1).sum(1).clamp(min=1e-30)


def gradient_report(model: nn.Module, variant: str = "stack-shapes", images: int = 200, batch_size: int = 25,
                    seed: int = 0) -> dict:
    """The module docstring's numbers on the first ``images`` test images (accuracy on all 800)."""
    with eval_mode(model):  # every module gets back its own mode afterwards
        device = model_device(model)
        distances, plain, guided, area = [], [], [], []
        data = StackedDataset(variant, "test", length=images, seed=seed, masks=True)
        for x, labels, objects in DataLoader(data, batch_size=batch_size):
            x, labels, objects = x.to(device), labels.to(device), objects.to(device).float()
            _, gradient = input_gradients(model, x, labels, create_graph=False)
            target = guided_targets(model, x, labels)
            distances.append(1 - F.cosine_similarity(gradient.flatten(1), target.flatten(1), dim=1, eps=1e-12))
            plain.append(energy_share(gradient, objects))
            guided.append(energy_share(target, objects))
            area.append(objects.flatten(1).mean(1))
        distance = torch.cat(distances)
        return {
            "accuracy": accuracy(model, StackedDataset(variant, "test", seed=seed)),
            "distance_mean": float(distance.mean()), "distance_std": float(distance.std()),
            "object_energy_gradient": float(torch.cat(plain).mean()), "object_energy_guided": float(torch.cat(guided).mean()),
            "object_area": float(torch.cat(area).mean()), "images": images,
        }


def main(argv: Sequence[str] | None = None) -> None:
    """The interpretable-gradients sweep: accuracy and gradient distance per checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--out", default=None, help="write a CSV here")
    args = parser.parse_args(argv)
    rows = []
    for path in args.checkpoints:
        card_path = Path(path).with_suffix(".json")
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        weight = card.get("training", {}).get("guided_grad_reg", float("nan"))
        row = {"checkpoint": Path(path).name, "lambda": weight,
               **gradient_report(load_checkpoint(path).model, images=args.images)}
        rows.append(row)
        print(", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
