"""How much of a map lies inside a region: maps only, no model. Maps S are (N, H, W), S >= 0.

The region R is a boolean (H, W) or (N, H, W) mask. Per image:
- ``l2``          ||S*R||_2 / ||S||_2   (the "see through walls" paper's Table 1 ratio)
- ``mass``        sum(S*R) / sum(S)
- ``peak``        1 if argmax S lies inside R (0 for an all-zero map); a maximum shared by several
                  pixels counts as the share of them inside R, the expectation over which is the peak
- ``above_half``  share of R (weighted by R's values) where S > 0.5

Every share lies in [0, 1] for regions with values in [0, 1].

What the share means depends on the region: inside the model's *unseen region* or behind a
*feature wall* the model provably cannot use those pixels or cells, so any share there is leakage;
inside a drawn region it is only where the map attends. An all-zero map gives 0, never NaN.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..checks import check_maps
from ..errors import CamlabError
from ..maps import minmax
from .catalog import Better, register_metric

_EPS = 1e-12


def _region_like(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    check_maps(maps)
    if not isinstance(region, torch.Tensor) or region.dim() not in (2, 3):
        shape = tuple(region.shape) if isinstance(region, torch.Tensor) else type(region).__name__
        raise CamlabError(f"a region is an (H, W) or (N, H, W) mask, got {shape}")
    region = region.to(maps.device)
    if region.shape[-2:] != maps.shape[-2:] or (region.dim() == 3 and region.shape[0] not in (1, maps.shape[0])):
        raise CamlabError(f"the region is {tuple(region.shape)} but the maps are {tuple(maps.shape)}")
    if region.is_floating_point() and not bool(((region >= 0) & (region <= 1)).all()):
        raise CamlabError("a region's values must lie in [0, 1] (a mask, or the share of each cell inside it)")
    return region.to(maps.dtype).expand_as(maps)


def _unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map divided by its maximum: the shares are scale-free, and this keeps norms of maps with
    huge values from overflowing to inf."""
    top = maps.flatten(1).amax(dim=1).clamp(min=torch.finfo(maps.dtype).tiny)
    return maps / top.view(-1, *([1] * (maps.dim() - 1)))


def l2_share(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """||S inside the region||_2 / ||S||_2 per image."""
    region = _region_like(maps, region)
    maps = _unit(maps)
    inside = (maps * region).flatten(1).norm(dim=1)
    return inside / maps.flatten(1).norm(dim=1).clamp(min=_EPS)


def mass_share(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """sum(S inside the region) / sum(S) per image."""
    region = _region_like(maps, region)
    maps = _unit(maps)
    return (maps * region).flatten(1).sum(1) / maps.flatten(1).sum(1).clamp(min=_EPS)


def peak_inside(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """1 where the map's maximum lies inside the region, per image. When several pixels share the
    maximum, the region's mean over them: the expectation over which of them is the peak, so the
    answer never depends on pixel position (argmax would pick the top-left one)."""
    region = _region_like(maps, region)
    flat = maps.flatten(1)
    top = flat.amax(1, keepdim=True)
    at_peak = (flat == top).to(maps.dtype)
    hit = (region.flatten(1) * at_peak).sum(1) / at_peak.sum(1)
    return hit * (top[:, 0] > 0)


def above_half(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Share of the region where the map exceeds 0.5, per image: each pixel counts with its region
    weight (1 for a mask, the share of a cell inside it for a downsampled region), in the numerator
    as in the denominator, so the share lies in [0, 1]; 0 for an empty region."""
    region = _region_like(maps, region)
    above = ((maps > 0.5).to(maps.dtype) * region).flatten(1).sum(1)
    return above / region.flatten(1).sum(1).clamp(min=_EPS)


SHARES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l2": l2_share, "mass": mass_share, "peak": peak_inside, "above_half": above_half,
}


SHARE_WORDS = {"l2": "L2 share", "mass": "mass share", "peak": "peak inside", "above_half": "share of the region above 0.5"}
for _share, _words in SHARE_WORDS.items():
    register_metric(f"leakage_{_share}", group="leakage", better=Better.LOWER,
                    words=f"leakage, {_words} in the region the model cannot use", needs=("region",))
    register_metric(f"layer_leakage_{_share}", group="leakage", better=Better.LOWER,
                    words=f"leakage at the layer's resolution, {_words}", needs=("region",))


def region_shares(maps: torch.Tensor, region: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every share of :data:`SHARES`, per image, on maps at the region's resolution."""
    return {name: fn(maps, region) for name, fn in SHARES.items()}


def downsample_region(region: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Area-average a pixel region to layer resolution: the share of each cell inside it."""
    region = torch.as_tensor(region).float()
    squeeze = region.dim() == 2
    height, width = size
    pooled = F.adaptive_avg_pool2d(region.view(-1, 1, *region.shape[-2:]), (int(height), int(width)))[:, 0]
    return pooled[0] if squeeze else pooled


def layer_region_shares(raw: torch.Tensor, region: torch.Tensor) -> dict[str, torch.Tensor]:
    """Shares at the target layer's resolution (ReLU, min-max; the region area-downsampled),
    before upsampling can bleed across the region's edge."""
    cells = downsample_region(region.to(raw.device), tuple(raw.shape[-2:]))
    return region_shares(minmax(raw.clamp(min=0)), cells)


register_metric("pointing_game", group="localisation", better=Better.HIGHER, words="pointing game (peak on the object)",
                needs=("masks",))
register_metric("relevance_mass", group="localisation", better=Better.HIGHER,
                words="relevance mass on the object (energy pointing game)", needs=("masks",))
register_metric("relevance_rank", group="localisation", better=Better.HIGHER,
                words="relevance rank accuracy (top-|object| pixels on the object)", needs=("masks",))


def rank_share(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Relevance rank accuracy (Arras et al. 2022): of the K highest-valued pixels, K the mask's
    size, the share inside the mask, per image; 0 for an empty mask. Pixels tied with the K-th
    value share the places left among them: the expectation over every order of the ties, so the
    answer does not depend on pixel position (CAM maps are often half exact zeros)."""
    masks = _region_like(maps, masks) > 0
    flat, inside = maps.flatten(1), masks.flatten(1)
    sizes = inside.sum(1)
    kth = flat.sort(dim=1, descending=True).values.gather(1, (sizes - 1).clamp(min=0)[:, None])
    above, tied = flat > kth, flat == kth
    places_left = (sizes - above.sum(1)).to(maps.dtype)
    tied_share = places_left / tied.sum(1).clamp(min=1).to(maps.dtype)
    hits = (inside & above).sum(1).to(maps.dtype) + (inside & tied).sum(1).to(maps.dtype) * tied_share
    return torch.where(sizes > 0, hits / sizes.clamp(min=1).to(maps.dtype), torch.zeros_like(hits))


def localisation(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, how well the map finds the object in ``masks`` (N, H, W): its peak on it
    (pointing game), its mass on it (relevance mass accuracy, the energy-based pointing game for a
    mask) and its top-|mask| pixels on it (relevance rank accuracy)."""
    return {"pointing_game": peak_inside(maps, masks), "relevance_mass": mass_share(maps, masks),
            "relevance_rank": rank_share(maps, masks)}
