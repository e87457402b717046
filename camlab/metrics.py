"""Leakage and faithfulness metrics, batched on the device. Maps S are (N, H, W), S >= 0.

Formulas (W is a 0/1 wall mask (H, W) or (N, H, W); Y the softmax probability of the target class
on the image, O on the image multiplied by the map):
- dead-zone ratio  ||S*W||_2 / ||S||_2                     ("see through walls", Table 1)
- mass leakage     sum(S*W) / sum(S)
- peak in wall     1 if argmax S lies inside W
- wall above 0.5   fraction of wall pixels with S > 0.5
- Average Drop     100 * mean(max(0, Y - O) / Y)
- Increase in Confidence 100 * mean(1[O > Y])
- Average Gain     100 * mean(max(0, O - Y) / (1 - Y))
- insertion / deletion AUC (RISE): pixels added to a blurred start / removed to zeros in order of
  decreasing saliency, ``steps`` steps, trapezoid area under the probability curve.
A map that is zero everywhere gives NaN-free results: leakage 0 and O computed on a black image.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .errors import CamlabError

_EPS = 1e-12


def _wall_like(maps: torch.Tensor, wall: torch.Tensor) -> torch.Tensor:
    wall = torch.as_tensor(wall, device=maps.device)
    if wall.shape[-2:] != maps.shape[-2:]:
        raise CamlabError(f"the wall is {tuple(wall.shape[-2:])} but the maps are {tuple(maps.shape[-2:])}")
    return wall.to(maps.dtype).expand_as(maps)


def dead_zone_ratio(maps: torch.Tensor, wall: torch.Tensor) -> torch.Tensor:
    """||S on the wall||_2 / ||S||_2 per image."""
    wall = _wall_like(maps, wall)
    inside = (maps * wall).flatten(1).norm(dim=1)
    return inside / maps.flatten(1).norm(dim=1).clamp(min=_EPS)


def mass_leakage(maps: torch.Tensor, wall: torch.Tensor) -> torch.Tensor:
    wall = _wall_like(maps, wall)
    return (maps * wall).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp(min=_EPS)


def peak_in_wall(maps: torch.Tensor, wall: torch.Tensor) -> torch.Tensor:
    wall = _wall_like(maps, wall)
    peak = maps.flatten(1).argmax(dim=1, keepdim=True)
    hit = wall.flatten(1).gather(1, peak)[:, 0]
    return hit * (maps.flatten(1).amax(1) > 0)


def wall_above_half(maps: torch.Tensor, wall: torch.Tensor) -> torch.Tensor:
    wall = _wall_like(maps, wall)
    above = ((maps > 0.5) & (wall > 0)).flatten(1).sum(1)
    return above / wall.flatten(1).sum(1).clamp(min=1)


LEAKAGE_METRICS: dict[str, Callable] = {
    "dead_zone_l2": dead_zone_ratio, "mass_leakage": mass_leakage,
    "peak_in_wall": peak_in_wall, "wall_above_0.5": wall_above_half,
}


def leakage(maps: torch.Tensor, wall: torch.Tensor) -> dict[str, torch.Tensor]:
    """All leakage metrics per image, on the given maps (display or raw resolution)."""
    return {name: fn(maps, wall) for name, fn in LEAKAGE_METRICS.items()}


def downsample_wall(wall: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average a pixel wall to layer resolution: the share of each cell behind the wall."""
    wall = torch.as_tensor(wall).float()
    squeeze = wall.dim() == 2
    pooled = F.adaptive_avg_pool2d(wall.view(-1, 1, *wall.shape[-2:]), size)[:, 0]
    return pooled[0] if squeeze else pooled


def raw_leakage(raw: torch.Tensor, wall: torch.Tensor) -> dict[str, torch.Tensor]:
    """Leakage at the target layer's resolution, before upsampling can bleed across the wall edge."""
    from .maps import minmax

    return leakage(minmax(raw.clamp(min=0)), downsample_wall(wall.to(raw.device), tuple(raw.shape[-2:])))
