"""Control maps for faithfulness claims, and maps binarised to a fixed coverage. Maps only, no model.

A faithfulness score means something only next to what a map with no knowledge of the model scores:

- ``zeros``: the all-zero map (Average Drop on a black image);
- ``ones``: the all-ones map (the image unchanged: Average Drop 0 by construction);
- ``random``: a random smooth map (uniform noise on a 7x7 grid, bilinearly upsampled, min-max);
- ``matched`` (per method): the method's own values moved to random smooth places — the random
  map's ordering with the method map's sorted values, so it has exactly the method's coverage and
  histogram, and differs only in *where* the values are. A method that does not beat its matched
  control is rewarded for how much it covers, not for where it looks.

``top_fraction(maps, k)`` keeps the top k% of each map's pixels: Average Drop on those binary maps
compares methods at equal area.

Tie orders: CAM display maps are often half exact zeros, and a metric that ranks pixels (the top k%,
insertion, deletion) must not order equal values by their position (top rows first would reward a
map for ties). :func:`tie_ranks` breaks ties by seeded random permutations, K of them per image,
drawn from ``(seed, the image's index in its dataset)`` so an image gets the same orders however
its dataset is batched; metrics average over the K orders and report the spread across them. A
constant map then scores as a uniformly random pixel order does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import whole_number
from ..errors import CamlabError

CONTROLS = ("zeros", "ones", "random")
COVERAGES = (5, 10, 20, 50)
TIE_ORDERS = 4


def random_smooth(count: int, size: Sequence[int], cells: int = 7, seed: int = 0,
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
    """A coverage as a float percentage in (0, 100], or a clear error."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent <= 100:
        raise CamlabError(f"a coverage is a percentage in (0, 100], got {percent!r}")
    return float(percent)


def image_seed(seed: int, index: int, *stream: int) -> int:
    """One 63-bit generator seed per (seed, image index in its dataset[, stream]), with no collisions
    between nearby pairs: what a metric's per-image randomness (tie orders; ROAD's noise, stream 1)
    is drawn from, so it does not depend on how a dataset is batched."""
    state = np.random.SeedSequence([seed, index, *stream]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def tie_ranks(maps: torch.Tensor, orders: int = TIE_ORDERS, seed: int = 0,
              indices: torch.Tensor | None = None) -> torch.Tensor:
    """(K, N, H*W) int32 ranks of each map's pixels, 0 the highest value, K = ``orders``; pixels of
    equal value are ordered by the k-th random permutation drawn for image ``indices[i]`` (default
    0..N-1; maps of the same image, e.g. several methods, get the same orders). Permutations are
    drawn on the CPU so every device gets the same ranks."""
    orders = whole_number("tie orders", orders, 1, 64)
    seed = whole_number("seed", seed, 0)
    flat = maps.flatten(1)
    n, size = flat.shape
    indices = torch.arange(n) if indices is None else torch.as_tensor(indices).cpu()
    if indices.shape != (n,):
        raise CamlabError(f"tie orders need one image index per map, got {tuple(indices.shape)} for {n} maps")
    unique, which = indices.unique(return_inverse=True)
    permutations = torch.empty(orders, len(unique), size, dtype=torch.long)
    for column, index in enumerate(unique.tolist()):
        generator = torch.Generator().manual_seed(image_seed(seed, index))
        for order in range(orders):
            permutations[order, column] = torch.randperm(size, generator=generator)
    which = which.to(maps.device)
    ranks = torch.empty(orders, n, size, dtype=torch.int32, device=maps.device)
    places = torch.arange(size, dtype=torch.int32, device=maps.device).expand(n, -1)
    for order in range(orders):  # one order at a time: (N, H*W) int64 indices, never K of them
        shuffled = permutations[order].to(maps.device)[which]
        by_value = flat.gather(1, shuffled).argsort(dim=1, descending=True, stable=True)
        ranks[order].scatter_(1, shuffled.gather(1, by_value), places)
    return ranks


def order_dependent(maps: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(N, T): whether the set of each map's ``counts[t]`` highest pixels depends on the tie order,
    i.e. the count cuts through a run of equal values. Where it does not, every order gives the
    same set and a metric evaluates it once."""
    values = maps.flatten(1).sort(dim=1, descending=True).values
    size = values.shape[1]
    counts = torch.as_tensor(counts, device=maps.device).long().view(-1)
    inside = (counts > 0) & (counts < size)
    cut = counts.clamp(1, max(size - 1, 1))
    return (values[:, cut - 1] == values[:, cut.clamp(max=size - 1)]) & inside


def top_count(percent: float, size: int) -> int:
    """How many of ``size`` pixels the top ``percent``% keeps (at least one)."""
    return max(1, round(size * check_coverage(percent) / 100))


def check_ranks(ranks: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``ranks`` as :func:`tie_ranks` makes them for ``maps`` (N, H, W): (K, N, H*W)."""
    expected = (maps.shape[0], maps[0].numel())
    if not isinstance(ranks, torch.Tensor) or ranks.dim() != 3 or tuple(ranks.shape[1:]) != expected:
        shape = tuple(ranks.shape) if isinstance(ranks, torch.Tensor) else type(ranks).__name__
        raise CamlabError(f"ranks must be (orders, {expected[0]}, {expected[1]}), got {shape}")
    return ranks


def top_fraction(maps: torch.Tensor, percent: float, ranks: torch.Tensor | None = None) -> torch.Tensor:
    """Binary maps (K, N, H, W), one per tie order of ``ranks`` (K, N, H*W), keeping each map's top
    ``percent``% pixels (at least one); default ranks: one seeded random order of :func:`tie_ranks`."""
    ranks = tie_ranks(maps, 1) if ranks is None else check_ranks(ranks, maps)
    return (ranks < top_count(percent, maps[0].numel())).to(maps.dtype).view(ranks.shape[0], *maps.shape)
