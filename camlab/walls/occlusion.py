"""Occlusion: a model wrapped so that the pixels behind a wall are replaced before it runs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CamlabError

# What a BlindModel puts where the wall is (the model sees the fill; never a removal metric's fill).
OCCLUSION_FILLS = ("zero", "mean", "blur", "noise")


def box_sum(t: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of ``t`` (N, C, H, W) over the (2r+1)^2 window around each pixel, clipped to the image,
    from a summed-area table: the same cost for any radius."""
    table = F.pad(t.cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    height, width = t.shape[-2:]
    rows = torch.arange(height, device=t.device)
    cols = torch.arange(width, device=t.device)
    top, bottom = (rows - radius).clamp(0, height)[:, None], (rows + radius + 1).clamp(0, height)[:, None]
    left, right = (cols - radius).clamp(0, width)[None], (cols + radius + 1).clamp(0, width)[None]
    return (table[..., bottom, right] - table[..., top, right] - table[..., bottom, left] + table[..., top, left])


class BlindModel(nn.Module):
    """Wraps a model so it cannot see behind a wall: walled pixels are replaced before it runs.

    Fills: ``zero`` (black), ``mean`` (a constant colour, e.g. the dataset mean), ``noise``
    (uniform noise from a fixed seed, drawn once), ``blur`` (the average of the *visible* pixels in
    a ``blur_kernel`` square, a normalised box filter, so no walled value leaks in). In every case
    the output is a function of the visible pixels alone. ``wall`` is (H, W): images must be that size.
    """

    wall: torch.Tensor
    mean: torch.Tensor
    noise: torch.Tensor

    def __init__(self, model: nn.Module, wall: torch.Tensor, fill: str = "zero",
                 mean: tuple[float, float, float] = (0.5, 0.5, 0.5), seed: int = 0, blur_kernel: int = 31) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise CamlabError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if fill not in OCCLUSION_FILLS:
            raise CamlabError(f"unknown fill {fill!r}; choose one of {', '.join(OCCLUSION_FILLS)}")
        wall = torch.as_tensor(wall)
        if wall.dim() != 2 or min(wall.shape) < 1:
            raise CamlabError(f"the wall must be an (H, W) mask, got shape {tuple(wall.shape)}")
        colour = torch.as_tensor(mean, dtype=torch.float32).flatten()
        if colour.numel() != 3 or not torch.isfinite(colour).all():
            raise CamlabError(f"the mean fill needs 3 finite channel values, got {colour.tolist()}")
        longest = max(wall.shape)
        if isinstance(blur_kernel, bool) or not isinstance(blur_kernel, int) or not 1 <= blur_kernel <= 2 * longest + 1:
            raise CamlabError(f"blur_kernel must be a whole number in [1, {2 * longest + 1}] pixels, got {blur_kernel!r}")
        self.model, self.fill, self.blur_radius = model, fill, blur_kernel // 2
        self.register_buffer("wall", wall.bool()[None, None].float())
        self.register_buffer("mean", colour.view(1, 3, 1, 1))
        noise = torch.rand(3, *wall.shape, generator=torch.Generator().manual_seed(int(seed)))
        self.register_buffer("noise", noise[None] if fill == "noise" else torch.zeros(1, 3, 1, 1))

    def _fill(self, x: torch.Tensor) -> torch.Tensor:
        if self.fill == "zero":
            return torch.zeros_like(x)
        if self.fill == "mean":
            return self.mean.to(x.dtype).expand_as(x)
        if self.fill == "noise":
            return self.noise.to(x.dtype).expand_as(x)
        visible = 1 - self.wall.to(x.dtype)
        summed = box_sum(x * visible, self.blur_radius)
        weight = box_sum(visible, self.blur_radius)
        average = (x * visible).sum((2, 3), keepdim=True) / visible.sum().clamp(min=1)
        return torch.where(weight > 0.5, summed / weight.clamp(min=1), average)

    def blind(self, x: torch.Tensor) -> torch.Tensor:
        """The images with the walled pixels replaced by the fill."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3 or x.shape[-2:] != self.wall.shape[-2:]:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise CamlabError(f"the wall is {tuple(self.wall.shape[-2:])}, so images must be (N, 3, "
                              f"{self.wall.shape[-2]}, {self.wall.shape[-1]}); got {shape}")
        wall = self.wall.to(x.dtype)
        return torch.where(wall > 0, self._fill(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's logits on the images with the walled pixels filled."""
        return self.model(self.blind(x))
