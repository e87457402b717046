"""How much of a map lies inside a region: maps only, no model. Maps S are (N, H, W), S >= 0.

The region R is a boolean (H, W) or (N, H, W) mask. Per image:
- ``l2``          ||S*R||_2 / ||S||_2   (the "see through walls" paper's Table 1 ratio)
- ``mass``        sum(S*R) / sum(S)
- ``peak``        1 if argmax S lies inside R (0 for an all-zero map)
- ``above_half``  share of R's pixels where S > 0.5

What the share means depends on the region: inside the model's *unseen region* or behind a
*feature wall* the model provably cannot use those pixels or cells, so any share there is leakage;
inside a drawn region it is only where the map attends. An all-zero map gives 0, never NaN.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import CamlabError
from ..maps import minmax

_EPS = 1e-12


def _region_like(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    region = torch.as_tensor(region, device=maps.device)
    if region.shape[-2:] != maps.shape[-2:]:
        raise CamlabError(f"the region is {tuple(region.shape[-2:])} but the maps are {tuple(maps.shape[-2:])}")
    return region.to(maps.dtype).expand_as(maps)


def l2_share(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """||S inside the region||_2 / ||S||_2 per image."""
    region = _region_like(maps, region)
    inside = (maps * region).flatten(1).norm(dim=1)
    return inside / maps.flatten(1).norm(dim=1).clamp(min=_EPS)


def mass_share(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """sum(S inside the region) / sum(S) per image."""
    region = _region_like(maps, region)
    return (maps * region).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp(min=_EPS)


def peak_inside(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """1 where the map's maximum lies inside the region, per image."""
    region = _region_like(maps, region)
    peak = maps.flatten(1).argmax(dim=1, keepdim=True)
    hit = region.flatten(1).gather(1, peak)[:, 0]
    return hit * (maps.flatten(1).amax(1) > 0)


def above_half(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Share of the region's pixels where the map exceeds 0.5, per image."""
    region = _region_like(maps, region)
    above = ((maps > 0.5) & (region > 0)).flatten(1).sum(1)
    return above / region.flatten(1).sum(1).clamp(min=1)


SHARES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l2": l2_share, "mass": mass_share, "peak": peak_inside, "above_half": above_half,
}


def region_shares(maps: torch.Tensor, region: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every share of :data:`SHARES`, per image, on maps at the region's resolution."""
    return {name: fn(maps, region) for name, fn in SHARES.items()}


def downsample_region(region: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average a pixel region to layer resolution: the share of each cell inside it."""
    region = torch.as_tensor(region).float()
    squeeze = region.dim() == 2
    pooled = F.adaptive_avg_pool2d(region.view(-1, 1, *region.shape[-2:]), size)[:, 0]
    return pooled[0] if squeeze else pooled


def layer_region_shares(raw: torch.Tensor, region: torch.Tensor) -> dict[str, torch.Tensor]:
    """Shares at the target layer's resolution (ReLU, min-max; the region area-downsampled),
    before upsampling can bleed across the region's edge."""
    cells = downsample_region(region.to(raw.device), tuple(raw.shape[-2:]))
    return region_shares(minmax(raw.clamp(min=0)), cells)
