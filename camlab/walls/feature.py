"""Feature walls: the paper's wall on any CNN and any drawn region.

"CAM-based methods can see through walls" walls a model by making its head unable to read some
cells of a feature map (it zeroes the first dense layer's weights for the bottom rows of VGG16's
last feature map). The output then provably ignores those cells, yet channel-averaging CAMs still
paint them, because the cells' activations are still there to be weighted. :class:`FeatureWall`
does the same on any model: the layer's output is multiplied by 0 on the walled cells *after* the
layer, so the layer's own activations are untouched (CAMs read them) while nothing downstream can.

Snapping: a cell (i, j) of an (h, w) feature map covers the pixels
``[i*H/h, (i+1)*H/h) x [j*W/w, (j+1)*W/w)`` of the (H, W) input; it is walled when at least half of
that area lies inside the drawn wall (the area average of :func:`~camlab.metrics.leakage.downsample_region`).

Layers whose output is not an (N, C, h, w) map are walled in their own layout (``reshape``, as in
:mod:`camlab.reshape`): a vision transformer's patch tokens (the class token is never walled) or a
Swin transformer's channels-last grid. What the wall proves is the same: nothing after the layer
reads the walled cells or tokens. Whether that makes *pixels* unseen is another question
(:func:`~camlab.walls.analyse_unseen_region`): in a ViT, the residual stream and earlier attention
carry every patch's pixels past the wall, so the region is usually empty, with the reason.

The wall holds in eval mode, the mode explanations run in: in train mode batch norm's statistics
mix positions, so a walled cell can still move the output through them.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..device import model_device
from ..errors import CamlabError
from ..layers import layer_output_shape, resolve_layer
from ..metrics.leakage import downsample_region
from ..reshape import LayerLayout, Reshape, layout_for


def kept_cells(cells: torch.Tensor, layout: LayerLayout) -> torch.Tensor:
    """1 where the layer's output may be read and 0 on the walled ``cells`` ((h, w) bool), shaped to
    broadcast over one output of ``layout``: (1, 1, h, w) maps, (1, h, w, 1) channels-last, (1, T, 1)
    tokens with the leading (class) tokens kept."""
    keep = (~cells).float()
    if layout.kind == "maps":
        return keep[None, None]
    if layout.kind == "nhwc":
        return keep[None, :, :, None]
    if layout.kind == "tokens":
        return torch.cat([keep.new_ones(layout.skip), keep.flatten()])[None, :, None]
    raise CamlabError("a feature wall walls maps, tokens or channels-last maps (reshape None, 'tokens' or "
                      "'nhwc'); a reshape function cannot say which outputs are the walled cells")


class CellMask(nn.Module):
    """Runs ``layer`` and zeroes the walled cells of its output, so later layers cannot read them;
    ``keep`` is :func:`kept_cells` in the output's layout."""

    keep: torch.Tensor

    def __init__(self, layer: nn.Module, keep: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.register_buffer("keep", keep, persistent=False)

    def forward(self, *args: object, **kwargs: object) -> torch.Tensor:
        """The layer's output with the walled cells zeroed."""
        return self.layer(*args, **kwargs) * self.keep


def snap_to_cells(wall: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """(h, w) bool: the cells at least half covered by the (H, W) pixel wall."""
    return downsample_region(torch.as_tensor(wall).bool(), grid) >= 0.5


def cell_footprint(cells: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(H, W) bool: the pixels the (h, w) walled cells stand for (nearest-neighbour upsampling, so
    area-averaging it back to the grid gives the cells again when H, W are multiples of h, w)."""
    return F.interpolate(cells[None, None].float(), size=size, mode="nearest")[0, 0] > 0


def _with_module(root: nn.Module, name: str, replacement: nn.Module) -> nn.Module:
    """A shallow copy of ``root`` whose submodule ``name`` is ``replacement``: only the containers on
    the path to it are copied; every other module, parameter and buffer is shared, unchanged."""
    head, _, rest = name.partition(".")
    clone = copy.copy(root)
    clone._modules = dict(root._modules)
    clone._modules[head] = _with_module(root.get_submodule(head), rest, replacement) if rest else replacement
    return clone


class FeatureWall(nn.Module):
    """``model`` with the cells of ``layer``'s output under ``wall`` made unreadable (see the module docs).

    ``wall`` is an (H, W) boolean pixel mask at the model's input size; ``cells`` is the (h, w) mask
    of walled cells it snaps to; ``layer`` is the walled module (the same object as in ``model``),
    so ``camlab.explain(wall_model, x, methods, target_layer=wall_model.layer)`` explains the walled
    model at its wall. ``reshape`` reads the layer's output as maps (:mod:`camlab.reshape`: ``None``
    for maps or a ViT's tokens, ``"nhwc"`` for Swin); ``keep`` is the wall in that output's layout (0
    on walled cells or tokens). ``model`` itself is not modified.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, wall: torch.Tensor, reshape: Reshape = None) -> None:
        super().__init__()
        name, module = resolve_layer(model, layer)
        wall = torch.as_tensor(wall)
        if wall.dim() != 2:
            raise CamlabError(f"a feature wall is an (H, W) pixel mask, got shape {tuple(wall.shape)}")
        shape = layer_output_shape(model, module, (3, *wall.shape))
        if len(shape) not in (2, 3):
            raise CamlabError(f"layer {name!r} outputs {tuple(shape)}, not a spatial (C, h, w) map or (tokens, C): "
                              "a feature wall needs a layer with a grid of cells")
        output = torch.empty((1, *shape), device="meta")  # only its shape is read
        layout = layout_for(output, reshape)
        grid = tuple(layout.to_map(output).shape[2:])
        if grid[0] * grid[1] < 2:
            raise CamlabError(f"layer {name!r} reads as a {grid[0]}x{grid[1]} grid: a feature wall needs several cells")
        cells = snap_to_cells(wall, grid).to(model_device(model))
        cell_h, cell_w = wall.shape[0] / grid[0], wall.shape[1] / grid[1]
        if not cells.any():
            raise CamlabError(f"the wall covers no cell of {name!r} ({grid[0]}x{grid[1]} cells of about "
                              f"{cell_h:.0f}x{cell_w:.0f} pixels): a cell is walled when half of it is covered")
        if cells.all():
            raise CamlabError(f"the wall covers every cell of {name!r}: the model would have nothing to read")
        self.model = _with_module(model, name, CellMask(module, kept_cells(cells, layout)))
        self.wall_name = name
        self.training = model.training  # a wrapper of an eval model is in eval mode (nn.Module starts in train)
        self.cells = cells
        self.layer_name = f"model.{name}.layer"
        self._walled: nn.Module
        object.__setattr__(self, "_walled", module)  # a reference, not a second registration

    @property
    def keep(self) -> torch.Tensor:
        """The wall in the layer's output layout: 1 where it may be read, 0 on walled cells or tokens."""
        return cast(CellMask, self.model.get_submodule(self.wall_name)).keep

    @property
    def layer(self) -> nn.Module:
        """The walled layer: its output is what CAMs read, before the wall zeroes it downstream."""
        return self._walled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The walled model's logits."""
        return self.model(x)
