"""Layer-space CAM methods that read the shared activations and gradients.

Each function maps a :class:`CAMContext` to a raw, signed map of shape (N, h, w) at the target
layer's resolution. Formulas follow the original papers as implemented in pytorch-grad-cam 1.5.7,
so the tests can check agreement to 1e-4; where we deliberately differ it is said in the docstring.
"""
from __future__ import annotations

import torch

from .context import CAMContext

_SPATIAL = (2, 3)


def weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    return torch.einsum("nk,nkhw->nhw", weights, activations)


def gradcam(ctx: CAMContext) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): channel weights are spatial means of the gradients."""
    return weighted_sum(ctx.gradients.mean(dim=_SPATIAL), ctx.activations)


def gradcam_plusplus(ctx: CAMContext) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19) with exp-score higher derivatives."""
    grads, acts = ctx.gradients, ctx.activations
    grads_2 = grads.pow(2)
    denominator = 2 * grads_2 + acts.sum(dim=_SPATIAL, keepdim=True) * grads_2 * grads + 1e-6
    alpha = torch.where(grads != 0, grads_2 / denominator, torch.zeros_like(grads))
    return weighted_sum((alpha * grads.clamp(min=0)).sum(dim=_SPATIAL), acts)


def xgradcam(ctx: CAMContext) -> torch.Tensor:
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the activation's share of its channel."""
    grads, acts = ctx.gradients, ctx.activations
    share = acts / (acts.sum(dim=_SPATIAL, keepdim=True) + 1e-7)
    return weighted_sum((grads * share).sum(dim=_SPATIAL), acts)


def hirescam(ctx: CAMContext) -> torch.Tensor:
    """HiRes-CAM (Draelos & Carin 2020): element-wise gradient x activation, summed over channels."""
    return (ctx.gradients * ctx.activations).sum(dim=1)


def layercam(ctx: CAMContext) -> torch.Tensor:
    """Layer-CAM (Jiang et al. 2021): positive gradients x activations, element-wise."""
    return (ctx.gradients.clamp(min=0) * ctx.activations).sum(dim=1)


def eigencam(ctx: CAMContext) -> torch.Tensor:
    """Eigen-CAM (Muhammad & Yeasin 2020): projection on the first principal component.

    The sign of a principal component is arbitrary (pytorch-grad-cam takes whatever LAPACK
    returns). We fix it: the projection is oriented to correlate positively with the total
    activation at each position, so the map lights up where the features are strong.
    """
    acts = ctx.activations
    n, k, h, w = acts.shape
    states = acts.flatten(2).transpose(1, 2)  # (N, HW, K)
    centred = states - states.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = torch.einsum("npk,nk->np", centred, vh[:, 0, :])
    energy = states.sum(dim=2)
    sign = torch.sign((projection * (energy - energy.mean(dim=1, keepdim=True))).sum(dim=1))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (projection * sign[:, None]).view(n, h, w)


def randomcam(ctx: CAMContext) -> torch.Tensor:
    """Sanity baseline: uniform random channel weights in [-1, 1], seeded for reproducibility."""
    acts = ctx.activations
    generator = torch.Generator(device=acts.device).manual_seed(0)
    weights = torch.rand(acts.shape[:2], generator=generator, device=acts.device, dtype=acts.dtype)
    return weighted_sum(2 * weights - 1, acts)
