"""The unseen region: input pixels a model's output provably cannot depend on.

Found in two steps, and claimed only when both agree:

1. **Structure.** A CPU, float64 copy of the model in which every path from input to output carries
   a strictly positive weight: weights become |w| (exact zeros stay zero), biases |b| + 1, batch
   norm's running means 0; every element-wise nonlinearity (module or functional: ReLU, GELU,
   SiLU, sigmoid, tanh, ...) becomes the identity, every max-pool an average pool over the same
   windows, softmax the identity (its outputs sum to a constant, which would hide every path) — in
   fused attention too — and layer/group norm a positive per-channel scale. On an all-ones input d(sum of outputs)/d(pixel)
   is then a sum of positive path products: zero exactly when no path reaches the output.
2. **Evidence.** The claimed pixels are randomised on a few random images; the model's outputs (in
   eval mode, on its own device and dtype) must be bit-identical. If they are not — an operation
   the copy misread — no region is claimed, and the reason says so.

A wall holds in eval mode only: in train mode batch norm's batch statistics mix every position.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..checks import check_logits
from ..device import model_device
from ..errors import CamlabError
from ..layers import resolve_layer
from ..modes import eval_mode
from ..reshape import Reshape, layout_for
from .feature import FeatureWall

_IDENTITIES = {
    F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu6, F.leaky_relu,
    F.leaky_relu_, F.gelu, F.silu, F.mish, F.elu, F.selu, F.hardswish, F.hardsigmoid, F.hardtanh, torch.sigmoid,
    torch.Tensor.sigmoid, F.sigmoid, torch.tanh, torch.Tensor.tanh, F.tanh, F.softmax, torch.softmax,
    torch.Tensor.softmax, F.log_softmax, torch.log_softmax, torch.Tensor.log_softmax, F.dropout, F.dropout2d,
}
_AVERAGE_POOLS = {F.max_pool2d: F.avg_pool2d, F.adaptive_max_pool2d: F.adaptive_avg_pool2d}
_POOL_KEYWORDS = ("kernel_size", "stride", "padding", "ceil_mode")


class _PositivePaths(TorchFunctionMode):
    """Routes the functions that would break the positive-path argument to positive stand-ins."""

    def __torch_function__(self, func: Callable, types: Sequence[type], args: Sequence = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _IDENTITIES:
            return args[0]
        if func is F.max_pool2d or getattr(func, "__name__", "") == "_max_pool2d":
            known = dict(zip(_POOL_KEYWORDS, args[1:]), **{k: kwargs[k] for k in _POOL_KEYWORDS if k in kwargs})
            return F.avg_pool2d(args[0], known["kernel_size"], known.get("stride") or None, known.get("padding", 0),
                                known.get("ceil_mode", False))
        if func is F.adaptive_max_pool2d or getattr(func, "__name__", "") == "adaptive_max_pool2d_with_indices":
            return F.adaptive_avg_pool2d(args[0], args[1] if len(args) > 1 else kwargs["output_size"])
        if func is F.scaled_dot_product_attention:
            return _linear_attention(*args, **kwargs)
        if func in (F.layer_norm, F.group_norm):
            weight = kwargs.get("weight", args[2] if len(args) > 2 else None)
            x = args[0]
            if weight is None:
                return x
            shape = [1, -1] + [1] * (x.dim() - 2) if func is F.group_norm else [-1]
            return x * weight.abs().view(*shape)
        return func(*args, **kwargs)


def _allowed(mask: torch.Tensor) -> torch.Tensor:
    """An attention mask as booleans: True where a key may be attended to (a bool mask, or a float one not -inf)."""
    return mask if mask.dtype == torch.bool else mask > float("-inf")


def _linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                      dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                      **_options: object) -> torch.Tensor:
    """Attention with its softmax as the identity, as everywhere in the copy: saturated, a softmax's
    weights underflow to exact zeros on the copy's large positive scores and would hide real paths.
    Masked-out keys (a False or -inf ``attn_mask``, ``is_causal``) stay at weight 0."""
    weights = query @ key.transpose(-2, -1) * (scale if scale is not None else query.shape[-1] ** -0.5)
    allowed = torch.ones(weights.shape[-2:], dtype=torch.bool, device=weights.device)
    if is_causal:
        allowed = allowed.tril()
    if attn_mask is not None:
        allowed = allowed & _allowed(attn_mask)
    weights = weights * allowed
    # Rows scaled to sum to 1 by a constant (detached): every path stays positive, and twelve layers of
    # cubic attention scores do not overflow float64 (an inf would hide every zero). No dropout.
    return weights / weights.sum(dim=-1, keepdim=True).clamp(min=1e-300).detach() @ value


class _PositiveAttention(nn.Module):
    """nn.MultiheadAttention's computation on its own (positive) weights with :func:`_linear_attention`:
    the module calls its fused kernels inside one function, out of the copy's reach."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        if attention.bias_k is not None or attention.add_zero_attn:
            raise ValueError("attention with bias_k/bias_v or add_zero_attn has no positive stand-in here")
        self.attention = attention

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, None]:
        """The attention output (weights are not returned)."""
        module, heads = self.attention, self.attention.num_heads
        if not module.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if module.in_proj_weight is not None:
            weights = module.in_proj_weight.chunk(3)
        else:
            weights = (module.q_proj_weight, module.k_proj_weight, module.v_proj_weight)
        biases = module.in_proj_bias.chunk(3) if module.in_proj_bias is not None else (None, None, None)
        q, k, v = (F.linear(t, w, b).unflatten(-1, (heads, -1)).transpose(1, 2)
                   for t, w, b in zip((query, key, value), weights, biases))
        allowed = attn_mask
        if key_padding_mask is not None:  # True or -inf marks padding: the opposite sense
            padding = key_padding_mask if key_padding_mask.dtype == torch.bool else key_padding_mask == float("-inf")
            keep_keys = ~padding[:, None, None, :]
            allowed = keep_keys if allowed is None else _allowed(allowed) & keep_keys
        out = _linear_attention(q, k, v, allowed, is_causal=is_causal).transpose(1, 2).flatten(2)
        out = module.out_proj(out)
        return (out if module.batch_first else out.transpose(0, 1)), None


def _positive_copy(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model).to("cpu", torch.float64).eval()
    with torch.no_grad():
        for name, param in twin.named_parameters():
            param.abs_()
            if name.endswith("bias"):
                param.add_(1)
        for name, buffer in twin.named_buffers():
            if name.endswith("running_mean"):
                buffer.zero_()
    for name, module in list(twin.named_modules()):
        if isinstance(module, nn.MultiheadAttention):
            parent, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, child, _PositiveAttention(module))
    return twin


def structural_unseen(model: nn.Module, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """Step 1 of the module docstring: (H, W) bool, pixels no positive path connects to the output."""
    twin = _positive_copy(model)
    x = torch.ones((1, *input_shape), dtype=torch.float64, requires_grad=True)
    with _PositivePaths():
        output = check_logits(twin(x), 1, finite=False)
    (grad,) = torch.autograd.grad(output.sum(), x)
    return grad[0].abs().sum(dim=0) == 0


@dataclass(frozen=True)
class UnseenRegion:
    """The pixels a model's output provably ignores ((H, W) bool, on the CPU), and how that was
    established — or why no region is claimed."""

    pixels: torch.Tensor
    reason: str


def analyse_unseen_region(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224), trials: int = 3,
                          seed: int = 0) -> UnseenRegion:
    """The module docstring's two steps; the model itself is not modified."""
    try:
        claimed = structural_unseen(model, input_shape)
    except CamlabError:  # not a classifier: the caller's mistake, not a limit of the analysis
        raise
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:  # an operation the copy cannot stand in for
        empty = torch.zeros(input_shape[1:], dtype=torch.bool)
        return UnseenRegion(empty, f"not analysed ({type(exc).__name__}: {exc}); no region is claimed")
    return _with_evidence(model, claimed, input_shape, trials, seed)


def _output_change(model: nn.Module, images: torch.Tensor, changed: torch.Tensor, module: nn.Module | None = None,
                   hook: Callable | None = None) -> float | None:
    """None when ``model``'s outputs on ``images`` and on ``changed`` (with ``hook`` on ``module`` for that
    pass) are bit-identical, else their largest difference; eval mode, the model's own device and dtype."""
    device, dtype = model_device(model), next((p.dtype for p in model.parameters()), torch.float32)
    with eval_mode(model), torch.inference_mode():  # same batch positions both times: bit-identity is fair
        before = check_logits(model(images.to(device, dtype)), len(images), finite=False)
        handle = module.register_forward_hook(hook) if module is not None and hook is not None else None
        try:
            after = check_logits(model(changed.to(device, dtype)), len(images), finite=False)
        finally:
            if handle is not None:
                handle.remove()
    return None if torch.equal(before, after) else float((before - after).abs().max())


def _with_evidence(model: nn.Module, claimed: torch.Tensor, input_shape: tuple[int, int, int], trials: int,
                   seed: int) -> UnseenRegion:
    """Step 2 of the module docstring for the structurally ``claimed`` (H, W) pixels."""
    if not claimed.any():
        return UnseenRegion(claimed, "every pixel reaches the output through some path")
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand((trials, *input_shape), generator=generator)
    changed = images.clone()
    changed[:, :, claimed] = torch.rand(changed[:, :, claimed].shape, generator=generator)
    largest = _output_change(model, images, changed)
    if largest is not None:
        empty = torch.zeros_like(claimed)
        return UnseenRegion(empty, f"the structure suggested {int(claimed.sum())} pixels, but randomising them "
                                   f"changed the output (by up to {largest:.3g}); no region is claimed")
    images_said = "1 random image" if trials == 1 else f"{trials} random images"
    return UnseenRegion(claimed, f"no path from these {int(claimed.sum())} pixels reaches the output, and "
                                 f"randomising them on {images_said} left the output bit-identical")


@dataclass(frozen=True)
class UnreadCells:
    """The cells of ``layer``'s (h, w) grid the rest of the model provably never reads (bool, on the
    CPU; a walled model's own wall), and how that was established — or why none are claimed."""

    layer: str
    cells: torch.Tensor
    reason: str


class FeatureWallAnalyser:
    """:func:`analyse_unseen_region` for many feature walls on one (model, layer), each for the
    price of one float64 backward pass through the layers before the wall.

    The positive-path copy is linear in its input, so d(sum of outputs)/d(layer output) is one fixed
    tensor ``g`` whatever the input or wall. When every path from input to output runs through the
    layer (checked exactly once: with the layer's output detached, no gradient reaches the input),
    the walled copy's input gradient is the layers-before's vector-Jacobian product with ``g`` times
    the wall's keep-mask; pixels where it is zero are the structural claim. The evidence step then
    runs on the real walled model as in :func:`analyse_unseen_region`. When the layer is not a cut
    (a skip connection around it, a ViT's residual stream), each wall is one float64 forward and
    backward of the same copy with the wall's keep-mask multiplied into the layer's output — the
    positive copy of the walled model, without copying the model again for every wall.

    Holds the copy (and, for a cut, its graph: about twice the float64 activations of one image)
    between calls; calls from several threads need the caller's lock.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224),
                 trials: int = 3, seed: int = 0) -> None:
        self.name, self._module = resolve_layer(model, layer)
        self.input_shape, self.trials, self.seed = input_shape, trials, seed
        self.reason = ""
        try:
            self._trace(model)
        except CamlabError:  # not a classifier: the caller's mistake, not a limit of the analysis
            raise
        except (RuntimeError, TypeError, ValueError, KeyError) as exc:  # an operation the copy cannot stand in for
            self._activation, self._twin, self._output, self._suffix = None, None, None, None
            self.reason = f"not analysed ({type(exc).__name__}: {exc})"

    def _trace(self, model: nn.Module) -> None:
        twin = _positive_copy(model)
        _, twin_layer = resolve_layer(twin, self.name)
        self._twin: nn.Module | None = twin
        self._twin_layer = twin_layer
        outputs: list[object] = []

        def record(_module: nn.Module, _inputs: tuple, output: object) -> None:
            outputs.append(output)

        handle = twin_layer.register_forward_hook(record)
        self._input = torch.ones((1, *self.input_shape), dtype=torch.float64, requires_grad=True)
        try:
            with _PositivePaths():
                total = check_logits(twin(self._input), 1, finite=False).sum()
        finally:
            handle.remove()
        self._activation = outputs[0] if len(outputs) == 1 and isinstance(outputs[0], torch.Tensor) else None
        self._output, self._suffix = self._activation, None  # the layer's output, kept when the layer is no cut
        if self._activation is None:
            self.reason = f"layer {self.name!r} ran {len(outputs)} times in one forward pass"
            return
        # what the rest of the copy reads of each output element, cut or not
        (self._suffix,) = torch.autograd.grad(total, self._activation, retain_graph=True)
        detached = twin_layer.register_forward_hook(lambda _module, _inputs, output: output.detach())
        try:
            with _PositivePaths():
                (bypass,) = torch.autograd.grad(check_logits(twin(self._input), 1, finite=False).sum(), self._input,
                                                allow_unused=True)
        finally:
            detached.remove()
        if bypass is not None and bypass.any():
            self._activation = None
            self.reason = f"some paths from the input to the output bypass {self.name!r}"

    @property
    def is_cut(self) -> bool:
        """Whether every path from input to output runs through the layer (the fast path applies)."""
        return self._activation is not None

    def structural(self, keep: torch.Tensor) -> torch.Tensor:
        """(H, W) bool: the pixels no positive path reaches the output through once the layer's output
        is multiplied by ``keep`` (a wall's :attr:`~camlab.walls.FeatureWall.keep`, 0 on the walled cells
        or tokens); only when :attr:`is_cut`."""
        if self._activation is None or self._suffix is None:
            raise CamlabError(f"the pixels behind a wall on {self.name!r} are found by trials here: {self.reason}")
        keep = keep.detach().cpu().to(torch.float64)
        (grad,) = torch.autograd.grad(self._activation, self._input, self._suffix * keep, retain_graph=True)
        return grad[0].abs().sum(dim=0) == 0

    def unread_cells(self, model: nn.Module, reshape: Reshape = None) -> UnreadCells:
        """The cells of the layer the output cannot depend on, found as :func:`analyse_unseen_region` finds
        pixels: the copy's d(sum of outputs)/d(layer output), taken once when tracing, is zero on every
        channel of those cells (structure), and replacing their values at random on the analyser's
        random images leaves ``model``'s output bit-identical (evidence). ``model`` is the one this
        analyser was built on; ``reshape`` reads the layer as in :mod:`camlab.reshape`."""
        if self._suffix is None or self._output is None:
            return UnreadCells(self.name, torch.zeros(0, 0, dtype=torch.bool), f"{self.reason}; no cells are claimed")
        layout = layout_for(self._output, reshape)
        claimed = layout.to_map(self._suffix)[0].abs().sum(dim=0) == 0
        if not claimed.any():
            return UnreadCells(self.name, claimed, f"every cell of {self.name!r} reaches the output through some path")
        generator = torch.Generator().manual_seed(self.seed)
        images = torch.rand((self.trials, *self.input_shape), generator=generator)

        def randomised(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            maps = layout.to_map(output).clone()
            noise = torch.randn(maps[..., claimed].shape, generator=generator) * (1 + float(maps.abs().max()))
            maps[..., claimed] = noise.to(maps)
            return layout.to_output(maps, output)

        try:
            largest = _output_change(model, images, images, self._module, randomised)
        except CamlabError as exc:  # a custom reshape cannot write values back into the layer's output
            return UnreadCells(self.name, torch.zeros_like(claimed), f"not verified ({exc}); no cells are claimed")
        count = f"{int(claimed.sum())} of {claimed.numel()} cells of {self.name!r}"
        if largest is not None:
            return UnreadCells(self.name, torch.zeros_like(claimed), f"the structure suggested {count}, but randomising "
                               f"them changed the output (by up to {largest:.3g}); none are claimed")
        images_said = "1 random image" if self.trials == 1 else f"{self.trials} random images"
        return UnreadCells(self.name, claimed, f"no path from {count} reaches the output, and randomising their "
                                               f"values on {images_said} left the output bit-identical")

    def analyse(self, walled: FeatureWall) -> UnseenRegion:
        """The unseen region of ``walled``, a :class:`~camlab.walls.FeatureWall` on this analyser's
        model and layer, as :func:`analyse_unseen_region` finds it."""
        if not isinstance(walled, FeatureWall) or walled.layer is not self._module:
            raise CamlabError(f"this analyser is for feature walls on {self.name!r} of its own model")
        if self.is_cut:
            claimed = self.structural(walled.keep)
        elif self._twin is None:
            return analyse_unseen_region(walled, self.input_shape, self.trials, self.seed)
        else:
            try:
                claimed = self._structural_through_copy(self._twin, walled.keep)
            except (RuntimeError, TypeError, ValueError, KeyError) as exc:  # as analyse_unseen_region says it
                empty = torch.zeros(self.input_shape[1:], dtype=torch.bool)
                return UnseenRegion(empty, f"not analysed ({type(exc).__name__}: {exc}); no region is claimed")
        return _with_evidence(walled, claimed, self.input_shape, self.trials, self.seed)

    def _structural_through_copy(self, twin: nn.Module, keep: torch.Tensor) -> torch.Tensor:
        """:func:`structural_unseen` of the walled model, run on the positive copy ``twin`` made once, the
        layer's output multiplied by ``keep`` as the wall's :class:`~camlab.walls.feature.CellMask` does."""
        keep = keep.detach().cpu().to(torch.float64)
        handle = self._twin_layer.register_forward_hook(lambda _module, _inputs, output: cast(torch.Tensor, output) * keep)
        x = torch.ones((1, *self.input_shape), dtype=torch.float64, requires_grad=True)
        try:
            with _PositivePaths():
                output = check_logits(twin(x), 1, finite=False)
        finally:
            handle.remove()
        (grad,) = torch.autograd.grad(output.sum(), x)
        return grad[0].abs().sum(dim=0) == 0


def unseen_region(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224)) -> torch.Tensor:
    """(H, W) bool on the CPU: the pixels :func:`analyse_unseen_region` proves the output ignores."""
    return analyse_unseen_region(model, input_shape).pixels


def analyse_unread_cells(model: nn.Module, layer: str | nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224),
                         reshape: Reshape = None, trials: int = 3, seed: int = 0) -> UnreadCells:
    """The cells of ``layer`` the model's output cannot depend on (:meth:`FeatureWallAnalyser.unread_cells`):
    for the paper's walled VGG the bottom rows its first dense layer has no weights for, for camlab's
    walled ResNet and ViT the rows their heads skip, for a :class:`~camlab.walls.FeatureWall` its wall;
    for an ordinary network, none. The model itself is not modified."""
    return FeatureWallAnalyser(model, layer, input_shape, trials, seed).unread_cells(model, reshape)
