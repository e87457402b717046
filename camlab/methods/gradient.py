"""Gradient CAMs that read the shared activations and gradients of the target layer.

Each function maps a :class:`CAMContext` to a raw, signed map of shape (N, h, w) at the target
layer's resolution. Formulas follow the original papers as implemented in pytorch-grad-cam 1.5.7,
so the tests can check agreement to 1e-4; where we deliberately differ the docstring says so.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import cast

import torch
from torch import nn

from ..context import CAMContext
from ..errors import CamlabError
from ..layers import resolve_layer, spatial_layers
from ..maps import minmax, upsample
from ..registry import Cost, Family, MethodFn, get_method, register_method
from ..reshape import Reshape
from .combine import channel_sum, noisy_copies, weighted_channels

SPATIAL = (2, 3)


def gradient_cam(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register a method that reads the shared gradients and returns its channels' terms (:func:`channel_sum`)."""
    register = register_method(name, family=Family.GRADIENT_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True)
    return lambda fn: register(channel_sum(fn))


@gradient_cam("gradcam")
def gradcam(ctx: CAMContext) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): channel weights are spatial means of the gradients."""
    return weighted_channels(ctx.layer_gradients.mean(dim=SPATIAL), ctx.activations)


def plusplus_map(grads: torch.Tensor, grads_2: torch.Tensor, grads_3: torch.Tensor,
                 acts: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++'s channel terms from the gradient and its second and third powers (eq. 19, exp-score
    derivatives)."""
    denominator = 2 * grads_2 + acts.sum(dim=SPATIAL, keepdim=True) * grads_3 + 1e-6
    alpha = torch.where(grads_2 != 0, grads_2 / denominator, torch.zeros_like(grads_2))
    return weighted_channels((alpha * grads.clamp(min=0)).sum(dim=SPATIAL), acts)


@gradient_cam("gradcam++")
def gradcam_plusplus(ctx: CAMContext) -> torch.Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19) with exp-score higher derivatives."""
    grads = ctx.layer_gradients
    grads_2 = grads.pow(2)
    return plusplus_map(grads, grads_2, grads_2 * grads, ctx.activations)


@register_method("smoothgradcam++", family=Family.GRADIENT_CAM, cost=Cost.PER_SAMPLE)
@channel_sum
def smoothgradcam_plusplus(ctx: CAMContext, *, samples: int = 25, noise: float = 0.15, seed: int = 0
                           ) -> torch.Tensor:
    """Smooth Grad-CAM++ (Omeiza et al. 2019): Grad-CAM++ with the gradient and its powers averaged over noisy inputs.

    The noisy copies are SmoothGrad's (``noise`` times each image's value range, seeded); the
    gradient, its square and its cube at the layer are each averaged over them and combined by
    Grad-CAM++'s formula over the clean image's activations, so ``noise`` 0 is Grad-CAM++.
    torchcam's ``SmoothGradCAMpp`` differs by definition: its denominator sums g³ x act over positions,
    its ReLU'd gradient and the activations it weights are the last noisy copy's.
    """
    acts = ctx.activations
    powers = torch.zeros((3, *acts.shape), device=acts.device, dtype=acts.dtype)
    for points, rows, done, count in noisy_copies("smoothgradcam++", ctx.inputs, samples, noise, seed,
                                                  ctx.chunk_size):
        _, grads = ctx.layer_pass(lambda logits, rows=rows: ctx.scorer(logits, rows=rows), inputs=points)
        grads = ctx.layout.to_map(grads)
        powers[:, rows[0]] += torch.stack([grads, grads.pow(2), grads.pow(3)]).sum(dim=1)
        ctx.chunk_done(done, count)
    mean, mean_2, mean_3 = powers / samples
    return plusplus_map(mean, mean_2, mean_3, acts)


@gradient_cam("xgradcam")
def xgradcam(ctx: CAMContext) -> torch.Tensor:
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the activation's share of its channel."""
    grads, acts = ctx.layer_gradients, ctx.activations
    share = acts / (acts.sum(dim=SPATIAL, keepdim=True) + 1e-7)
    return weighted_channels((grads * share).sum(dim=SPATIAL), acts)


@gradient_cam("layercam")
def layercam(ctx: CAMContext) -> torch.Tensor:
    """Layer-CAM (Jiang et al. 2021): positive gradients x activations, element-wise."""
    return ctx.layer_gradients.clamp(min=0) * ctx.activations


@gradient_cam("hirescam")
def hirescam(ctx: CAMContext) -> torch.Tensor:
    """HiRes-CAM (Draelos & Carin 2020): element-wise gradient x activation, summed over channels."""
    return ctx.layer_gradients * ctx.activations


@gradient_cam("gradcamelementwise")
def gradcam_elementwise(ctx: CAMContext) -> torch.Tensor:
    """Element-wise Grad-CAM (pytorch-grad-cam's ``GradCAMElementWise``): sum over channels of ReLU(grad x act)."""
    return (ctx.layer_gradients * ctx.activations).clamp(min=0)


@register_method("eigengradcam", family=Family.GRADIENT_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True)
def eigengradcam(ctx: CAMContext) -> torch.Tensor:
    """Eigen-Grad-CAM (pytorch-grad-cam): the first principal component of grad x act per position.

    Oriented to correlate positively with HiRes-CAM's map (the same products summed over channels);
    pytorch-grad-cam keeps LAPACK's sign. The centring before the decomposition gives positions with
    zero gradient a non-zero value, so unlike HiRes-CAM it is not zero on a wall. It is HiRes-CAM's
    terms under ``eigen_smooth``.
    """
    return hirescam(ctx, eigen_smooth=True)


@register_method("shapleycam", family=Family.GRADIENT_CAM, cost=Cost.OWN_BACKWARD)
@channel_sum
def shapleycam(ctx: CAMContext) -> torch.Tensor:
    """ShapleyCAM (Cai et al. 2025): channel weights are spatial means of grad - 1/2 Hessian x activation.

    The second-order term of the score's expansion around the activations, a Hessian-vector product
    from a backward of its own through a differentiable gradient, as in pytorch-grad-cam. Where
    everything after the layer is piecewise linear in it (ReLU heads, a logit target) the Hessian is
    zero almost everywhere and ShapleyCAM is Grad-CAM; it differs for smooth heads and targets
    (GELU, softmax, log-probabilities).
    """
    output, grads = ctx.layer_pass(ctx.scorer, create_graph=True)
    expansion = grads  # stays so where nothing after the layer is curved: no Hessian term
    if grads.requires_grad:
        (hvp,) = torch.autograd.grad(grads, output, grad_outputs=output.detach(), allow_unused=True)
        if hvp is not None:
            expansion = grads - 0.5 * hvp
    weights = ctx.layout.to_map(expansion.detach()).mean(dim=SPATIAL)
    return weighted_channels(weights, ctx.activations)


FINER_BASES = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam")


@register_method("finercam", family=Family.GRADIENT_CAM, cost=Cost.OWN_BACKWARD)
def finercam(ctx: CAMContext, *, alpha: float = 1.0, comparisons: int = 3, base: str = "gradcam",
             eigen_smooth: bool = False) -> torch.Tensor:
    """Finer-CAM (Zhang et al. 2025): the base CAM of y_c - alpha y_j, averaged over the most similar classes.

    The classes j are the ``comparisons`` whose logits are closest to the target's, weighted by
    their (differentiable) softmax probabilities, as pytorch-grad-cam's ``FinerWeightedTarget``:
    sum_j p_j (y_c - alpha y_j) / sum_j p_j. It shows what tells class c apart from its nearest
    confusions rather than what supports it; alpha 0 is the base CAM. ``eigen_smooth`` is the base's.
    """
    if base not in FINER_BASES:
        raise CamlabError(f"finercam base must be one of {', '.join(FINER_BASES)}, got {base!r}")
    classes = ctx.scorer.classes
    if classes is None:
        raise CamlabError("Finer-CAM compares the target class with its nearest classes: give class targets, "
                          "not a function")
    n, num_classes = ctx.logits.shape
    count = min(comparisons, num_classes - 1)
    if count < 1:
        raise CamlabError(f"Finer-CAM needs comparisons >= 1 and a model with more than one class, got "
                          f"comparisons {comparisons} and {num_classes} class(es)")
    rows = torch.arange(n, device=ctx.logits.device)
    distance = (ctx.logits - ctx.logits[rows, classes][:, None]).abs()
    distance[rows, classes] = torch.inf
    nearest = distance.topk(count, dim=1, largest=False).indices

    def finer_score(logits: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(logits, dim=1).gather(1, nearest)
        differences = logits[rows, classes][:, None] - alpha * logits.gather(1, nearest)
        return (weights * differences).sum(dim=1) / (weights.sum(dim=1) + 1e-9)

    _, grads = ctx.layer_pass(finer_score)
    finer = dataclasses.replace(ctx, gradients=ctx.layout.to_map(grads), _cache={})
    return get_method(base).compute(finer, eigen_smooth=eigen_smooth)


def finer_layers(model: nn.Module, layer_name: str, example: torch.Tensor, reshape: Reshape, levels: int) -> list[str]:
    """The last layer before ``layer_name`` at each of the next ``levels - 1`` finer grids, target side first
    (ResNet ``layer4``: ``layer3``, ``layer2``; VGG16 ``features.29``: ``features.22``, ``features.15``)."""
    found = spatial_layers(model, example[:1], reshape)
    names = [name for name, _ in found]
    if layer_name not in names:
        raise CamlabError(f"RefineCAM looks for finer layers before {layer_name!r}, which is not a spatial layer "
                          "that runs once per forward; name the layers with the option 'layers'")
    cells = found[names.index(layer_name)][1][1] * found[names.index(layer_name)][1][2]
    chosen: list[str] = []
    # walking back from the target, the first layer met at a finer grid is the last one at that grid
    for name, (_, h, w) in reversed(found[: names.index(layer_name)]):
        if len(chosen) == levels - 1:
            break
        if h * w > cells:
            chosen.append(name)
            cells = h * w
    return chosen


def refine_layers(model: nn.Module, layer_name: str, images: torch.Tensor, reshape: Reshape,
                  settings: Mapping[str, object]) -> list[str]:
    """RefineCAM's other layers under its ``settings``, in module order (the shared pass records them)."""
    levels, layers = cast(int, settings["levels"]), cast(str, settings["layers"])
    if not 1 <= levels <= 8:
        raise CamlabError(f"refinecam levels must be between 1 and 8, got {levels}")
    if layers.strip():
        extra = [name.strip() for name in layers.split(",") if name.strip() and name.strip() != layer_name]
        for name in extra:
            resolve_layer(model, name)  # a typo fails with suggestions, before any pass
    else:
        extra = finer_layers(model, layer_name, images, reshape, levels)
    if not extra:
        raise CamlabError(f"RefineCAM found no layer at a finer grid before {layer_name!r}; name the layers "
                          "with the option 'layers'")
    order = {name: index for index, (name, _) in enumerate(model.named_modules())}
    return sorted(dict.fromkeys(extra), key=order.__getitem__)


@register_method("refinecam", family=Family.GRADIENT_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True,
                 extra_layers=refine_layers)
def refinecam(ctx: CAMContext, *, base: str = "gradcam++", layers: str = "", levels: int = 3) -> torch.Tensor:
    """RefineCAM (arXiv 2605.14641): the base CAM at several layers, normalised, resized to the finest grid and multiplied.

    The layers are the target layer and ``layers`` (comma-separated dotted names) or, when that is
    empty, the last layer before the target at each of the next ``levels - 1`` finer grids, found by a
    dry run. Each layer's map is ReLU'd and min-max normalised, resized bilinearly to the finest of
    their grids and multiplied, as torchcam's ``RefineCAM``; pytorch-grad-cam multiplies the maps
    after upsampling each to the input. The shared forward and backward record every layer.
    """
    info = get_method(base)
    if info.pixel_space or info.family is Family.BASELINE or base == "refinecam":
        raise CamlabError(f"refinecam base must be a CAM method read off a layer, got {base!r}")
    others = refine_layers(ctx.model, ctx.layer_name, ctx.inputs, ctx.reshape, {"levels": levels, "layers": layers})
    maps = [info.compute(ctx)]  # then the others in module order: one product whichever way they were named
    maps += [info.compute(ctx.at_layer(resolve_layer(ctx.model, name), info.needs_gradients)) for name in others]
    size = max((tuple(m.shape[-2:]) for m in maps), key=lambda hw: hw[0] * hw[1])
    return torch.stack([upsample(minmax(m.clamp(min=0)), size) for m in maps]).prod(dim=0)
