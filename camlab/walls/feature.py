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

The wall holds in eval mode, the mode explanations run in: in train mode batch norm's statistics
mix positions, so a walled cell can still move the output through them.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..device import model_device
from ..errors import CamlabError
from ..layers import layer_output_shape, resolve_layer
from ..metrics.leakage import downsample_region


class CellMask(nn.Module):
    """Runs ``layer`` and zeroes the walled cells of its output, so later layers cannot read them."""

    def __init__(self, layer: nn.Module, cells: torch.Tensor) -> None:
        super().__init__()
        self.layer = layer
        self.register_buffer("keep", (~cells).float()[None, None], persistent=False)

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
    model at its wall. ``model`` itself is not modified.
    """

    def __init__(self, model: nn.Module, layer: str | nn.Module, wall: torch.Tensor) -> None:
        super().__init__()
        name, module = resolve_layer(model, layer)
        wall = torch.as_tensor(wall)
        if wall.dim() != 2:
            raise CamlabError(f"a feature wall is an (H, W) pixel mask, got shape {tuple(wall.shape)}")
        shape = layer_output_shape(model, module, (3, *wall.shape))
        if len(shape) != 3 or shape[1] * shape[2] < 2:
            raise CamlabError(f"layer {name!r} outputs {tuple(shape)}, not a spatial (C, h, w) map: "
                              "a feature wall needs a layer with a grid of cells")
        cells = snap_to_cells(wall, shape[1:]).to(model_device(model))
        cell_h, cell_w = wall.shape[0] / shape[1], wall.shape[1] / shape[2]
        if not cells.any():
            raise CamlabError(f"the wall covers no cell of {name!r} ({shape[1]}x{shape[2]} cells of about "
                              f"{cell_h:.0f}x{cell_w:.0f} pixels): a cell is walled when half of it is covered")
        if cells.all():
            raise CamlabError(f"the wall covers every cell of {name!r}: the model would have nothing to read")
        self.model = _with_module(model, name, CellMask(module, cells))
        self.training = model.training  # a wrapper of an eval model is in eval mode (nn.Module starts in train)
        self.cells = cells
        self.layer_name = f"model.{name}.layer"
        self._walled: nn.Module
        object.__setattr__(self, "_walled", module)  # a reference, not a second registration

    @property
    def layer(self) -> nn.Module:
        """The walled layer: its output is what CAMs read, before the wall zeroes it downstream."""
        return self._walled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The walled model's logits."""
        return self.model(x)
