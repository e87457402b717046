"""Sanity checks that run the explainer again on changed models (Adebayo et al. 2018)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..engine import explain
from .similarity import spearman


def cascading_randomisation(model: nn.Module, images: torch.Tensor, method: str, target_layer: str,
                            classes: torch.Tensor, seed: int = 0) -> list[tuple[str, float]]:
    """Re-initialise the model's parametrised layers from the output down, cumulatively, and report
    the mean Spearman correlation between each randomised model's map and the trained model's.
    A method that explains *this* model decorrelates quickly."""
    reference = explain(model, images, [method], target_layer, targets=classes)[method].display
    twin = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    layers = [(name, m) for name, m in twin.named_modules() if hasattr(m, "reset_parameters") and
              any(True for _ in m.parameters(recurse=False))]
    report = []
    for name, module in reversed(layers):
        with torch.no_grad():
            for param in module.parameters(recurse=False):
                param.copy_(torch.randn(param.shape, generator=generator) * param.std().clamp(min=1e-3))
        randomised = explain(twin, images, [method], target_layer, targets=classes)[method].display
        report.append((name, float(spearman(reference, randomised).mean())))
    return report
