"""The paper's theory model: a one-conv-layer walled CNN at Gaussian initialisation.

Input 29x29 (MNIST padded; here our stacked shapes in grey), conv with K 2x2 filters, ReLU, 2x2
max-pool to 14x14, and a linear layer on the flattened map whose weights for the bottom rows are
zero. The output cannot depend on those rows, yet Grad-CAM, whose channel weights average the
gradients from the visible rows, gives them positive mass whenever a filter with a positive weight
fires there. The Monte Carlo below measures that mass over random initialisations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import explain
from .data import StackedDataset

SIDE = 14


class OneConvWalledNet(nn.Module):
    """conv (K 2x2 filters) -> ReLU -> 2x2 max-pool -> linear, the linear weights of the bottom
    ``masked_rows`` rows of the 14x14 map zero; Gaussian initialisation."""

    def __init__(self, filters: int = 8, masked_rows: int = 7, classes: int = 8,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, 2)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(filters * SIDE * SIDE, classes)
        with torch.no_grad():  # Gaussian initialisation, as in the analysis
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) / (p[0].numel() ** 0.5 if p.dim() > 1 else 1))
            mask = torch.ones(filters, SIDE, SIDE)
            mask[:, SIDE - masked_rows :] = 0
            self.fc.weight.mul_(mask.flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of the theory model."""
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def theory_images(count: int = 16) -> torch.Tensor:
    """Grey 29x29 stacked-shape images standing in for padded MNIST."""
    images = torch.stack([StackedDataset("stack-shapes", "val", size=28, length=count)[i][0] for i in range(count)])
    return F.pad(images.mean(dim=1, keepdim=True), (0, 1, 0, 1))


THEORY_METHODS = ("gradcam", "hirescam")


def mass_below_wall(filters: int, masked_rows: int, trials: int, images: torch.Tensor,
                    seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per method of :data:`THEORY_METHODS` and per random initialisation: the mean over images of
    the share of the ReLU'd map's mass (on the 14x14 pooled map) in the walled bottom rows; and, to
    show, the first image's ReLU'd (14, 14) maps under a typical initialisation (the one whose
    Grad-CAM share is the median: the picture does not depend on which draw came first)."""
    generator = torch.Generator().manual_seed(seed)
    shares = {m: [] for m in THEORY_METHODS}
    first_maps = []
    for _ in range(trials):
        model = OneConvWalledNet(filters, masked_rows, generator=generator).eval()
        result = explain(model, images, list(THEORY_METHODS), target_layer="pool")
        maps = {}
        for method in THEORY_METHODS:
            raw = result[method].raw.clamp(min=0)
            below = raw[:, SIDE - masked_rows :].sum(dim=(1, 2))
            shares[method].append((below / raw.sum(dim=(1, 2)).clamp(min=1e-12)).mean())
            maps[method] = raw[0]
        first_maps.append(maps)
    shares = {m: torch.stack(values) for m, values in shares.items()}
    typical = int((shares["gradcam"] - shares["gradcam"].median()).abs().argmin())
    return shares, first_maps[typical]
