"""Pixel-space attributions: vanilla gradient, guided backprop, guided Grad-CAM, FullGrad, Integrated
Gradients, SmoothGrad."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..checks import check_logits, run_model
from ..context import CAMContext
from ..errors import CamlabError
from ..layers import differentiate
from ..maps import layer_map_to_display, minmax, upsample
from ..registry import Cost, Family, register_method
from ..targets import TargetScorer
from .combine import noisy_copies, pair_chunks, sample_count
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


def input_gradients(model: nn.Module, inputs: torch.Tensor, scorer: TargetScorer, rows: torch.Tensor | None = None,
                    create_graph: bool = False) -> torch.Tensor:
    """d(target score)/d(input) for a whole batch in one pass (``rows``: which image's target each row takes)."""
    with torch.enable_grad():
        x = inputs if inputs.requires_grad else inputs.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(scorer(model(x), rows=rows).sum(), x, create_graph=create_graph)
    return grad


def guided_input_gradients(
    model: nn.Module, inputs: torch.Tensor, scorer: TargetScorer, create_graph: bool = False
) -> torch.Tensor:
    """d(target score)/d(input) with guided-backprop ReLUs, for a whole batch in one pass."""
    with guided_relu():
        return input_gradients(model, inputs, scorer, create_graph=create_graph)


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


BIAS_LAYERS = (nn.Conv2d, nn.BatchNorm2d)


def effective_bias(layer: nn.Module) -> torch.Tensor | None:
    """What a Conv2d or eval-mode BatchNorm2d adds to each output channel whatever its input, or None
    (no bias; batch norm without running statistics, whose shift depends on the batch)."""
    if isinstance(layer, nn.BatchNorm2d):
        if layer.bias is None or layer.weight is None or layer.running_mean is None or layer.running_var is None:
            return None
        return layer.bias - layer.running_mean * layer.weight / torch.sqrt(layer.running_var + layer.eps)
    bias = getattr(layer, "bias", None)
    return bias if isinstance(bias, torch.Tensor) else None


def channel_minmax(maps: torch.Tensor) -> torch.Tensor:
    """Each (image, channel) slice of (N, C, H, W) scaled to [0, 1] on its own."""
    return minmax(maps.flatten(0, 1)).view_as(maps)


@register_method("fullgrad", family=Family.PIXEL, cost=Cost.OWN_BACKWARD, pixel_space=True)
def fullgrad(ctx: CAMContext) -> torch.Tensor:
    """FullGrad (Srinivas & Fleuret 2019) as pytorch-grad-cam computes it: |input gradient x input| plus, for
    every Conv2d and BatchNorm2d with a bias, |bias x the gradient of its output|, summed.

    Every channel of every term is min-max normalised on its own, then upsampled to the input
    (grad-cam's ``scale_accross_batch_and_channels``; the paper's code normalises each layer's
    channels together instead). Needs no target layer; one forward and backward of its own, with the
    gradient of every bias layer's output (batch norm's bias is its eval-mode shift).
    """
    biases: dict[nn.Module, torch.Tensor] = {module: bias.detach() for module in ctx.model.modules()
              if isinstance(module, BIAS_LAYERS) and (bias := effective_bias(module)) is not None}
    outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def keep(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        outputs.append((biases[module], output))
        return output.clone()  # in-place ops downstream must not overwrite what is differentiated

    with torch.enable_grad():
        x = ctx.inputs.detach().requires_grad_()
        handles = [module.register_forward_hook(keep) for module in biases]
        try:
            logits = check_logits(run_model(ctx.model, x), x.shape[0])
        finally:
            for handle in handles:
                handle.remove()
        wrt = [x] + [output for _, output in outputs]
        input_grad, *layer_grads = differentiate(ctx.scorer(logits).sum(), wrt, "its input")
    size = (x.shape[-2], x.shape[-1])
    total = channel_minmax((input_grad * x.detach()).abs()).sum(dim=1)
    for (bias, _), grad in zip(outputs, layer_grads):
        # sum over channels first: upsampling is linear, so one upsample per layer gives the same sum
        total += upsample(channel_minmax((bias.view(1, -1, 1, 1) * grad).abs()).sum(dim=1), size)
    return total[:, None]


INTEGRATION_RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def integration_points(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Where on the path from the baseline (0) to the input (1) the gradient is taken, and each point's
    weight, for ``rule`` (captum's rules and names)."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (nodes + 1), 0.5 * weights
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise CamlabError("the trapezoid rule needs at least 2 steps")
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0, 1, steps), weights
    start = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (np.arange(steps) + start) / steps, np.full(steps, 1.0 / steps)


@register_method("integrated_gradients", family=Family.PIXEL, cost=Cost.PER_SAMPLE, pixel_space=True)
def integrated_gradients(ctx: CAMContext, *, steps: int = 50, baseline: float = 0.0,
                         rule: str = "gausslegendre") -> torch.Tensor:
    """Integrated Gradients (Sundararajan et al. 2017): (input - baseline) x the gradient averaged along the path.

    The baseline is a constant image of value ``baseline`` in the model's input units; ``rule`` and
    ``steps`` choose captum's quadrature (Gauss-Legendre by default). Completeness: the attributions
    of an image sum to its score minus the baseline's, up to the quadrature's error. The
    (image, step) pairs of the whole batch run in chunks of ``chunk_size`` forwards and backwards.
    """
    if rule not in INTEGRATION_RULES:
        raise CamlabError(f"integrated_gradients rule must be one of {', '.join(INTEGRATION_RULES)}, got {rule!r}")
    sample_count("integrated_gradients", steps, "steps")
    alphas, weights = (torch.as_tensor(v, dtype=ctx.inputs.dtype, device=ctx.inputs.device)
                       for v in integration_points(steps, rule))
    inputs = ctx.inputs
    start = torch.full_like(inputs[:1], baseline)
    total = torch.zeros_like(inputs)
    pairs = torch.arange(inputs.shape[0] * steps, device=inputs.device)
    for chunk, done in pair_chunks(pairs, ctx.chunk_size):
        image, step = chunk // steps, chunk % steps
        points = start + alphas[step].view(-1, 1, 1, 1) * (inputs[image] - start)
        total.index_add_(0, image, input_gradients(ctx.model, points, ctx.scorer, rows=image) * weights[step].view(-1, 1, 1, 1))
        ctx.chunk_done(done, pairs.numel())
    return (inputs - start) * total


@register_method("smoothgrad", family=Family.PIXEL, cost=Cost.PER_SAMPLE, pixel_space=True)
def smoothgrad(ctx: CAMContext, *, samples: int = 25, noise: float = 0.15, seed: int = 0) -> torch.Tensor:
    """SmoothGrad (Smilkov et al. 2017): the signed input gradient averaged over noisy copies of the image.

    Gaussian noise with standard deviation ``noise`` times each image's value range (max - min),
    as the paper scales it; seeded (a CPU generator on every device), drawn image after image in batch
    order, so it equals captum's ``NoiseTunnel(Saliency, nt_type="smoothgrad", stdevs=noise x range)``
    with ``abs=False`` after ``torch.manual_seed(seed)``.
    """
    total = torch.zeros_like(ctx.inputs)
    for points, rows, done, count in noisy_copies("smoothgrad", ctx.inputs, samples, noise, seed, ctx.chunk_size):
        total[rows[0]] += input_gradients(ctx.model, points, ctx.scorer, rows=rows).sum(dim=0)
        ctx.chunk_done(done, count)
    return total / samples
