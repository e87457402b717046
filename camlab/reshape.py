"""Layers whose output is not an (N, C, H, W) map: vision-transformer tokens and channels-last maps.

A CAM needs a grid of channel vectors. Given a layer's output, :func:`layout_for` says how to read
one, following ``reshape``:

- ``None`` (automatic): a 4-D output is already (N, C, H, W); a 3-D output (N, T, C) is read as
  tokens — a square grid of T = h·w patches, or 1 + h·w with a leading class token (ViT), which is
  left out of the map;
- ``"tokens"``: as above, for 3-D outputs only;
- ``"nhwc"``: a channels-last map (N, H, W, C), as Swin transformers output;
- a callable ``f(output) -> (N, C, h, w)``: anything else.

Activations and gradients go through the same reading, as in pytorch-grad-cam's reshape_transform.
Built-in layouts can also write a map back into the layer's output format (Ablation-CAM needs
that); a callable cannot.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .errors import CamlabError

Reshape = None | str | Callable[[torch.Tensor], torch.Tensor]
LAYOUTS = ("tokens", "nhwc")


def _square_side(count: int) -> int | None:
    side = math.isqrt(count)
    return side if side * side == count and side > 0 else None


@dataclass(frozen=True)
class LayerLayout:
    """How one layer's output reads as (N, C, h, w) maps, and back."""

    kind: str  # "maps", "tokens", "nhwc" or "custom"
    skip: int = 0  # leading tokens (a class token) left out of the map
    side: int = 0
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def to_map(self, output: torch.Tensor) -> torch.Tensor:
        """The layer's output as (N, C, h, w) maps."""
        if self.kind == "maps":
            return output
        if self.kind == "tokens":
            n, _, c = output.shape
            return output[:, self.skip :].transpose(1, 2).reshape(n, c, self.side, self.side)
        if self.kind == "nhwc":
            return output.permute(0, 3, 1, 2)
        if self.fn is None:
            raise CamlabError(f"a {self.kind!r} layout needs its function")
        maps = self.fn(output)
        if not isinstance(maps, torch.Tensor) or maps.dim() != 4 or maps.shape[0] != output.shape[0]:
            shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
            raise CamlabError(f"the reshape function must return an (N, C, h, w) map with N = {output.shape[0]}, "
                              f"it returned {shape}")
        return maps

    def to_output(self, maps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Maps written back in the layer's output format; ``like`` supplies what the map leaves out."""
        if self.kind == "maps":
            return maps
        if self.kind == "tokens":
            return torch.cat([like[:, : self.skip], maps.flatten(2).transpose(1, 2)], dim=1)
        if self.kind == "nhwc":
            return maps.permute(0, 2, 3, 1)
        raise CamlabError("this method must write maps back into the layer's output, which a custom reshape "
                          "function cannot; use reshape='tokens' or 'nhwc', or another layer")


def layout_for(output: object, reshape: Reshape = None) -> LayerLayout:
    """The layout of a layer's ``output`` under ``reshape`` (see the module docstring), or a clear error."""
    if not isinstance(output, torch.Tensor):
        raise CamlabError(f"the target layer outputs a {type(output).__name__}, not a tensor")
    shape = tuple(output.shape)
    if callable(reshape):
        return LayerLayout("custom", fn=reshape)
    if reshape not in (None, *LAYOUTS):
        raise CamlabError(f"unknown reshape {reshape!r}; use None, {', '.join(map(repr, LAYOUTS))} or a function")
    if reshape == "nhwc":
        if output.dim() != 4:
            raise CamlabError(f"reshape='nhwc' needs a 4-D (N, H, W, C) output, the layer gives {shape}")
        return LayerLayout("nhwc")
    if reshape is None and output.dim() == 4:
        return LayerLayout("maps")
    if output.dim() == 3:
        tokens = shape[1]
        for skip in (0, 1):
            side = _square_side(tokens - skip)
            if side:
                return LayerLayout("tokens", skip=skip, side=side)
        raise CamlabError(f"the target layer outputs {tokens} tokens {shape}: not a square grid of patches, with or "
                          "without one class token; pass reshape=<function returning (N, C, h, w)>")
    raise CamlabError(f"the target layer must output a (N, C, H, W) map or (N, tokens, C) tokens, it output {shape}; "
                      "pass reshape= to read it")
