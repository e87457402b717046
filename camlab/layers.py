"""Finding the target layer: by module, by dotted name, or by a dry run."""
from __future__ import annotations

import difflib
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .checks import run_model
from .device import model_device
from .errors import CamlabError
from .modes import eval_mode
from .reshape import Reshape, layout_for

_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    """The dotted name of ``layer`` inside ``model``."""
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise CamlabError(f"the given target layer ({type(layer).__name__}) is not a submodule of the model")


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """Return ``(dotted_name, module)`` for a module or its dotted name, with suggestions on a typo."""
    if isinstance(layer, nn.Module):
        return layer_name(model, layer), layer
    if not isinstance(layer, str):
        raise CamlabError(f"target_layer must be a module or a dotted name, got {type(layer).__name__}")
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise CamlabError(f"the model has no layer named {layer!r}.{hint}")
    return layer, model.get_submodule(layer)


def check_hookable(model: nn.Module) -> None:
    """CAMs read a layer through a forward hook; compiled TorchScript modules do not take hooks."""
    if isinstance(model, torch.jit.ScriptModule):
        raise CamlabError("this is a TorchScript model: its layers cannot be hooked, so no CAM can read them; "
                          "load the weights as a camlab checkpoint or a torchvision-style state_dict instead")


@dataclass(frozen=True)
class DryRun:
    """What one hooked forward of an example image tells about a model: its spatial layers (name and
    (C, h, w) map) in order of completion, and how many output positions each convolution weight is
    used at, averaged over the convolutions' weights (0 without convolutions)."""

    layers: tuple[tuple[str, tuple[int, ...]], ...]
    conv_weight_reuse: float


# model -> (its modules as (name, weak reference), image shape, reshape, its dry run): the answer for the
# next call on the same model (the dry run is a whole hooked forward, 2.4x a ResNet18 explanation).
# Weak references, so a module replaced and garbage-collected can never match by a reused id.
_FOUND: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[tuple[str, weakref.ref], ...], tuple[int, ...], Reshape,
                                                   DryRun]]
_FOUND = weakref.WeakKeyDictionary()


def _structure(model: nn.Module) -> tuple[tuple[str, weakref.ref], ...]:
    return tuple((name, weakref.ref(module)) for name, module in model.named_modules())


def _same_structure(model: nn.Module, known: tuple[tuple[str, weakref.ref], ...]) -> bool:
    current = list(model.named_modules())
    return len(current) == len(known) and all(
        name == known_name and ref() is module for (name, module), (known_name, ref) in zip(current, known))


def spatial_layers(model: nn.Module, example: torch.Tensor, reshape: Reshape = None) -> list[tuple[str, tuple[int, ...]]]:
    """Layers whose output reads as a (C, h, w) map with more than one position under ``reshape``
    (:mod:`camlab.reshape`), with that map's shape, in order of completion (:func:`dry_run`)."""
    return list(dry_run(model, example, reshape).layers)


def dry_run(model: nn.Module, example: torch.Tensor, reshape: Reshape = None) -> DryRun:
    """One hooked forward of ``example`` (one image is enough): the model's spatial layers under
    ``reshape`` and its convolutions' weight reuse.

    Pooling layers (and containers that merely return a pooling output) are left out: a CAM is
    read off features, not off their pooled summary. Layers run more than once per forward are
    left out too, since a hook on them would see several tensors. The answer is kept for the next
    call on the same model with images of the same shape and the same ``reshape``, as long as the
    model's modules are the same objects under the same names.
    """
    check_hookable(model)
    shape = tuple(example.shape[1:])
    known = _FOUND.get(model)
    if known is not None and known[1] == shape and known[2] == reshape and _same_structure(model, known[0]):
        return known[3]
    calls: dict[str, int] = {}
    weights_by_positions = [0.0, 0.0]  # sum of weight count x output positions, sum of weight count
    order: list[tuple[str, torch.Tensor, tuple[int, ...]]] = []
    pooled: list[torch.Tensor] = []  # kept alive so identity checks stay valid
    handles = []

    def record(name: str, module: nn.Module) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            calls[name] = calls.get(name, 0) + 1
            if not isinstance(output, torch.Tensor):
                return
            if isinstance(module, nn.Conv2d) and output.dim() == 4:
                weights_by_positions[0] += module.weight.numel() * output.shape[-2] * output.shape[-1]
                weights_by_positions[1] += module.weight.numel()
            if isinstance(module, _POOLING):
                pooled.append(output)
                return
            try:
                grid = layout_for(output, reshape).to_map(output[:1])
            except CamlabError:
                return
            if grid.dim() == 4 and grid.shape[-1] * grid.shape[-2] > 1:
                order.append((name, output, tuple(grid.shape[1:])))

        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(record(name, module)))
    try:
        with torch.no_grad():
            run_model(model, example)
    finally:
        for handle in handles:
            handle.remove()
    found = tuple((name, grid) for name, out, grid in order if calls[name] == 1 and not any(out is p for p in pooled))
    total, count = weights_by_positions
    result = DryRun(found, total / count if count else 0.0)
    _FOUND[model] = (_structure(model), shape, reshape, result)
    return result


def layer_output_shape(model: nn.Module, layer: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape (without the batch) of ``layer``'s output when ``model`` runs on zeros of
    ``input_shape``, found by a dry run in eval mode on the model's device."""
    shapes: list[tuple[int, ...]] = []

    def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise CamlabError(f"the layer outputs a {type(output).__name__}, not a tensor")
        shapes.append(tuple(output.shape[1:]))

    handle = layer.register_forward_hook(record)
    try:
        with eval_mode(model), torch.inference_mode():
            run_model(model, torch.zeros((1, *input_shape), device=model_device(model)))
    finally:
        handle.remove()
    if not shapes:
        raise CamlabError("the layer did not run during the forward pass")
    return shapes[0]


# A CPU forward runs faster in channels-last (oneDNN's NHWC kernels) once each convolution weight is used
# at enough output positions per call (batch x the dry run's conv_weight_reuse) to pay for reordering the
# weights to NHWC on every call. One Grad-CAM at 224 px on a 2-core AMD EPYC, channels-last against the
# standard layout: ResNet18 (reuse 162) 0.67x at batch 1, 0.58x at 2, 1.09x at 4, 1.16x at 8; ResNet50
# (174) 0.87x, 0.95x, 1.06x, 1.16x; VGG16 (1043) 1.47x, 1.28x, 1.20x, 1.42x; ConvNeXt-T (156) 1.00x,
# 1.07x, 0.91x, 0.97x; the shipped VGG16-BN (1161), five CAMs, 1.22x at batch 1.
CHANNELS_LAST_REUSE = 600


def forward_layout(model: nn.Module, images: torch.Tensor, reshape: Reshape = None) -> torch.Tensor:
    """``images`` in the memory layout ``model``'s forward runs fastest in (see :data:`CHANNELS_LAST_REUSE`):
    the same values; only the kernels, and their float rounding, change. On CUDA they are left as they
    are (not measured), and so are they for a model whose dry run cannot run one image alone."""
    if images.device.type != "cpu" or images.dim() != 4:
        return images
    try:
        reuse = dry_run(model, images[:1], reshape).conv_weight_reuse
    except CamlabError:  # e.g. a model that needs a whole batch; the real forward says what is wrong
        return images
    if images.shape[0] * reuse >= CHANNELS_LAST_REUSE:
        return images.contiguous(memory_format=torch.channels_last)
    return images


def find_target_layer(model: nn.Module, example: torch.Tensor, reshape: Reshape = None) -> tuple[str, nn.Module]:
    """The last spatial feature layer, found by the dry run of :func:`spatial_layers` on ``example``
    (one image is enough; kept as that function keeps it)."""
    candidates = spatial_layers(model, example[:1], reshape)
    if not candidates:
        raise CamlabError("no layer of this model outputs a spatial (N, C, H, W) map; pass target_layer")
    return resolve_layer(model, candidates[-1][0])


def hooked_forward(model: nn.Module, layers: Sequence[tuple[str, nn.Module]], inputs: torch.Tensor, need_grads: bool,
                   on_output: Callable[[int, torch.Tensor], object] | None = None, record_graph: bool = False
                   ) -> tuple[object, list[torch.Tensor]]:
    """``model(inputs)`` and the output of each of ``(name, module)`` ``layers`` (the target layer
    first), made differentiable when ``need_grads``; ``record_graph`` records the forward's graph even
    when no layer needs it (for other hooks' differentiable tensors).

    ``on_output(index, output)`` sees each output inside its hook (a layout check that must fail
    before any backward). A clone goes downstream so an in-place op after a layer (ReLU(inplace=True))
    cannot overwrite the activation the caller differentiates with respect to. An output that already
    depends on an earlier hooked one stays in its graph (not a new leaf), so one backward reaches all.
    """
    captured: dict[int, torch.Tensor] = {}

    def what(index: int) -> str:
        return "the target layer" if index == 0 else f"layer {layers[index][0]!r}"

    def capture(index: int) -> Callable[[nn.Module, tuple, torch.Tensor], torch.Tensor | None]:
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if on_output is not None:
                on_output(index, output)
            if index in captured:
                raise CamlabError(f"{what(index)} runs more than once per forward; pick a layer that runs once")
            activation = output if output.requires_grad or not need_grads else output.detach().requires_grad_()
            captured[index] = activation
            return activation.clone() if need_grads else None

        return hook

    handles = [module.register_forward_hook(capture(index)) for index, (_, module) in enumerate(layers)]
    try:
        with torch.set_grad_enabled(need_grads or record_graph):
            logits = run_model(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    missing = [what(index) for index in range(len(layers)) if index not in captured]
    if missing:
        raise CamlabError(f"{missing[0]} did not run during the forward pass")
    return logits, [captured[index] for index in range(len(layers))]


def differentiate(score: torch.Tensor, wrt: Sequence[torch.Tensor], what: str,
                  create_graph: bool = False) -> tuple[torch.Tensor, ...]:
    """d(score)/d(each of ``wrt``), the first of which ``score`` must depend on (``what`` names it in
    the error); the others may be off the path, and their gradient is then zeros."""
    if not score.requires_grad:
        raise CamlabError(f"the model's output does not depend on {what}")
    grads = torch.autograd.grad(score, list(wrt), allow_unused=True, create_graph=create_graph)
    if grads[0] is None:
        raise CamlabError(f"the model's output does not depend on {what}")
    return tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, wrt))
