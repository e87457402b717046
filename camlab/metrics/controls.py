"""Control maps for faithfulness claims, and maps binarised to a fixed coverage. Maps only, no model.

A faithfulness score means something only next to what a map with no knowledge of the model scores:

- ``zeros``: the all-zero map (Average Drop on a black image);
- ``ones``: the all-ones map (the image unchanged: Average Drop 0 by construction);
- ``random``: a random smooth map (uniform noise on a 7x7 grid, bilinearly upsampled, min-max);
- ``matched`` (per method): the method's own values moved to random smooth places — the random
  map's ordering with the method map's sorted values, so it has exactly the method's coverage and
  histogram, and differs only in *where* the values are. A method that does not beat its matched
  control is rewarded for how much it covers, not for where it looks.

``top_fraction(maps, k)`` keeps the top k% of each map's pixels (ties broken by position): Average
Drop on those binary maps compares methods at equal area.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import CamlabError

CONTROLS = ("zeros", "ones", "random")
COVERAGES = (5, 10, 20, 50)


def random_smooth(count: int, size: tuple[int, int], cells: int = 7, seed: int = 0,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """Random maps (count, H, W) in [0, 1]: uniform noise on a cells x cells grid, bilinearly upsampled, min-max.
    The noise is drawn on the CPU from ``seed`` so every device gets the same maps."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 1, cells, cells, generator=generator).to(device)
    maps = F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)[:, 0]
    low = maps.flatten(1).amin(1)[:, None, None]
    high = maps.flatten(1).amax(1)[:, None, None]
    return (maps - low) / (high - low).clamp(min=1e-12)


def control_maps(kind: str, like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Control maps of ``kind`` (one of :data:`CONTROLS`) shaped and placed like ``like`` (N, H, W)."""
    if kind == "zeros":
        return torch.zeros_like(like)
    if kind == "ones":
        return torch.ones_like(like)
    if kind == "random":
        return random_smooth(like.shape[0], tuple(like.shape[-2:]), seed=seed, device=like.device).to(like.dtype)
    raise CamlabError(f"unknown control {kind!r}; choose one of {', '.join(CONTROLS)}")


def matched_control(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Each map's values at the places of a random smooth map's ranks: same histogram, random placement."""
    n = maps.shape[0]
    placement = random_smooth(n, tuple(maps.shape[-2:]), seed=seed, device=maps.device).flatten(1)
    values = maps.flatten(1).sort(dim=1).values
    ranks = placement.argsort(dim=1).argsort(dim=1)
    return values.gather(1, ranks).view_as(maps)


def check_coverage(percent: float) -> float:
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
        raise CamlabError(f"a coverage is a percentage in (0, 100], got {percent!r}")
    return float(percent)


def top_fraction(maps: torch.Tensor, percent: float) -> torch.Tensor:
    """Binary maps (N, H, W) keeping each map's top ``percent``% pixels (at least one)."""
    percent = check_coverage(percent)
    flat = maps.flatten(1)
    keep = max(1, round(flat.shape[1] * percent / 100))
    order = flat.argsort(dim=1, descending=True, stable=True)
    binary = torch.zeros_like(flat)
    binary.scatter_(1, order[:, :keep], 1.0)
    return binary.view_as(maps)
