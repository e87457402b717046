"""Gradient CAMs that read the shared activations and gradients of the target layer.

Each function maps a :class:`CAMContext` to a raw, signed map of shape (N, h, w) at the target
layer's resolution. Formulas follow the original papers as implemented in pytorch-grad-cam 1.5.7,
so the tests can check agreement to 1e-4; where we deliberately differ the docstring says so.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..context import CAMContext
from ..registry import Cost, Family, MethodFn, register_method
from .combine import principal_projection, weighted_sum

SPATIAL = (2, 3)


def gradient_cam(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register a method that reads the shared gradients."""
    return register_method(name, family=Family.GRADIENT_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True)


@gradient_cam("gradcam")
def gradcam(ctx: CAMContext) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): channel weights are spatial means of the gradients."""
    return weighted_sum(ctx.layer_gradients.mean(dim=SPATIAL), ctx.activations)


@gradient_cam("gradcam++")
def gradcam_plusplus(ctx: CAMContext) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19) with exp-score higher derivatives."""
    grads, acts = ctx.layer_gradients, ctx.activations
    grads_2 = grads.pow(2)
    denominator = 2 * grads_2 + acts.sum(dim=SPATIAL, keepdim=True) * grads_2 * grads + 1e-6
    alpha = torch.where(grads != 0, grads_2 / denominator, torch.zeros_like(grads))
    return weighted_sum((alpha * grads.clamp(min=0)).sum(dim=SPATIAL), acts)


@gradient_cam("xgradcam")
def xgradcam(ctx: CAMContext) -> torch.Tensor:
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the activation's share of its channel."""
    grads, acts = ctx.layer_gradients, ctx.activations
    share = acts / (acts.sum(dim=SPATIAL, keepdim=True) + 1e-7)
    return weighted_sum((grads * share).sum(dim=SPATIAL), acts)


@gradient_cam("layercam")
def layercam(ctx: CAMContext) -> torch.Tensor:
    """Layer-CAM (Jiang et al. 2021): positive gradients x activations, element-wise."""
    return (ctx.layer_gradients.clamp(min=0) * ctx.activations).sum(dim=1)


@gradient_cam("hirescam")
def hirescam(ctx: CAMContext) -> torch.Tensor:
    """HiRes-CAM (Draelos & Carin 2020): element-wise gradient x activation, summed over channels."""
    return (ctx.layer_gradients * ctx.activations).sum(dim=1)


@gradient_cam("gradcamelementwise")
def gradcam_elementwise(ctx: CAMContext) -> torch.Tensor:
    """Element-wise Grad-CAM (pytorch-grad-cam's ``GradCAMElementWise``): sum over channels of ReLU(grad x act)."""
    return (ctx.layer_gradients * ctx.activations).clamp(min=0).sum(dim=1)


@gradient_cam("eigengradcam")
def eigengradcam(ctx: CAMContext) -> torch.Tensor:
    """Eigen-Grad-CAM (pytorch-grad-cam): the first principal component of grad x act per position.

    Oriented to correlate positively with HiRes-CAM's map (the same products summed over channels);
    pytorch-grad-cam keeps LAPACK's sign. The centring before the decomposition gives positions with
    zero gradient a non-zero value, so unlike HiRes-CAM it is not zero on a wall.
    """
    products = ctx.layer_gradients * ctx.activations
    return principal_projection(products, products.sum(dim=1))
