"""Pixel-space attributions: vanilla gradient, guided backprop, guided Grad-CAM."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..context import CAMContext
from ..maps import layer_map_to_display
from ..registry import Cost, Family, register_method
from ..targets import TargetScorer
from .gradient import gradcam


class _GuidedReLUFunction(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients through positive inputs.

    The backward is written with differentiable ops, so guided gradients can themselves be
    differentiated (the guided-gradient regulariser trains through them).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # ctx: autograd's FunctionCtx
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, *grad_outputs: torch.Tensor) -> torch.Tensor:
        (grad_output,) = grad_outputs
        (out,) = ctx.saved_tensors
        return grad_output.clamp(min=0) * (out > 0).to(grad_output.dtype)


_RELU_CALLS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _GuidedReLUMode(TorchFunctionMode):
    """Routes every ReLU call, module or functional, in-place or not, to the guided ReLU.

    Working at the function level leaves the model untouched: no module swap, no hooks.
    """

    def __torch_function__(self, func: Callable, types: Sequence[type], args: Sequence = (),
                           kwargs: dict | None = None) -> Any:
        if func in _RELU_CALLS:
            return _GuidedReLUFunction.apply(args[0])
        return func(*args, **(kwargs or {}))


def guided_relu() -> contextlib.AbstractContextManager:
    """Context manager under which every ReLU backpropagates guided gradients."""
    return _GuidedReLUMode()


def guided_input_gradients(
    model: nn.Module, inputs: torch.Tensor, scorer: TargetScorer, create_graph: bool = False
) -> torch.Tensor:
    """d(target score)/d(input) with guided-backprop ReLUs, for a whole batch in one pass."""
    with torch.enable_grad():
        x = inputs if inputs.requires_grad else inputs.detach().requires_grad_(True)
        with guided_relu():
            logits = model(x)
        (grad,) = torch.autograd.grad(scorer(logits).sum(), x, create_graph=create_graph)
    return grad


@register_method("gradient", family=Family.PIXEL, cost=Cost.SHARED_BACKWARD, needs_input_gradients=True,
                 pixel_space=True)
def gradient(ctx: CAMContext) -> torch.Tensor:
    """Vanilla gradient (Simonyan et al. 2014): signed d(score)/d(input), from the shared backward."""
    return ctx.pixel_gradients


@register_method("guided_backprop", family=Family.PIXEL, cost=Cost.OWN_BACKWARD, pixel_space=True)
def guided_backprop(ctx: CAMContext) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): signed input gradient, guided ReLUs."""
    return ctx.cached("guided", lambda: guided_input_gradients(ctx.model, ctx.inputs, ctx.scorer))


@register_method("guided_gradcam", family=Family.PIXEL, cost=Cost.OWN_BACKWARD, needs_gradients=True,
                 pixel_space=True)
def guided_gradcam(ctx: CAMContext) -> torch.Tensor:
    """Guided Grad-CAM: guided backprop times the upsampled, normalised Grad-CAM map."""
    cam = layer_map_to_display(gradcam(ctx), tuple(ctx.inputs.shape[-2:]))
    return guided_backprop(ctx) * cam[:, None]
