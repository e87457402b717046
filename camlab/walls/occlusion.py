"""Occlusion: a model wrapped so that the pixels behind a wall are replaced before it runs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CamlabError

FILLS = ("zero", "mean", "blur", "noise")


class BlindModel(nn.Module):
    """Wraps a model so it cannot see behind a wall: walled pixels are replaced before it runs.

    Fills: ``zero`` (black), ``mean`` (a constant colour, e.g. the dataset mean), ``noise``
    (uniform noise from a fixed seed), ``blur`` (a blur of the *visible* pixels only, a normalised
    convolution, so no walled value leaks in). In every case the output is a function of the
    visible pixels alone.
    """

    def __init__(self, model: nn.Module, wall: torch.Tensor, fill: str = "zero",
                 mean: tuple[float, float, float] = (0.5, 0.5, 0.5), seed: int = 0, blur_kernel: int = 31):
        super().__init__()
        if fill not in FILLS:
            raise CamlabError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
        self.model, self.fill = model, fill
        self.blur_kernel, self.seed = blur_kernel | 1, seed
        wall = torch.as_tensor(wall).bool()
        self.register_buffer("wall", wall[None, None].float())
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))

    def _fill(self, x: torch.Tensor) -> torch.Tensor:
        if self.fill == "zero":
            return torch.zeros_like(x)
        if self.fill == "mean":
            return self.mean.to(x.dtype).expand_as(x)
        if self.fill == "noise":
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            return torch.rand(x.shape[1:], generator=generator).to(x)[None].expand_as(x)
        visible = 1 - self.wall.to(x.dtype)
        k = self.blur_kernel
        box = torch.ones(1, 1, k, k, dtype=x.dtype, device=x.device)
        summed = F.conv2d((x * visible).flatten(0, 1)[:, None], box, padding=k // 2).view_as(x)
        weight = F.conv2d(visible, box, padding=k // 2)
        average = (x * visible).sum((2, 3), keepdim=True) / visible.sum().clamp(min=1)
        return torch.where(weight > 0, summed / weight.clamp(min=1e-6), average)

    def blind(self, x: torch.Tensor) -> torch.Tensor:
        wall = self.wall.to(x.dtype)
        return torch.where(wall > 0, self._fill(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.blind(x))
