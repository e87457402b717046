"""How alike two maps are: maps only, no model. Rows of (N, ...) tensors are compared pairwise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import CamlabError

_EPS = 1e-12
DISTANCES = ("cosine", "mse")


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 0..P-1 per row of (N, P), tied values sharing the mean of their ranks (as
    ``scipy.stats.rankdata(method="average")`` minus one), computed on the tensor's device."""
    ordered = values.sort(dim=1).values.contiguous()
    first = torch.searchsorted(ordered, values.contiguous(), side="left")
    last = torch.searchsorted(ordered, values.contiguous(), side="right") - 1
    return (first + last).to(torch.float32) / 2


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per row of (N, ...) tensors, ties given average ranks. Where a row is
    constant there is no ordering to correlate: identical rows give 1 (nothing changed), others 0."""
    ra, rb = (average_ranks(x.flatten(1)) for x in (a, b))
    ra, rb = (r - r.mean(dim=1, keepdim=True) for r in (ra, rb))
    norm = ra.norm(dim=1) * rb.norm(dim=1)
    identical = (a.flatten(1) == b.flatten(1)).all(dim=1).to(norm.dtype)
    return torch.where(norm > 0, ((ra * rb).sum(1) / norm.clamp(min=_EPS)).clamp(-1, 1), identical)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity (Wang et al. 2004) per pair of (N, H, W) maps: Gaussian window
    (sigma 1.5, 11 taps), K1 = 0.01, K2 = 0.03, population statistics, borders cropped as in
    ``skimage.metrics.structural_similarity(gaussian_weights=True, use_sample_covariance=False)``."""
    radius = int(3.5 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, device=a.device, dtype=torch.float32)
    kernel = torch.exp(-(taps ** 2) / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    window = (kernel[:, None] * kernel[None, :])[None, None]

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window)

    x, y = a[:, None].float(), b[:, None].float()
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return index.flatten(1).mean(1)


def gradient_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Mean over the batch of the distance between per-image flattened attributions.

    ``cosine``: 1 - cosine similarity; ``mse``: squared distance of the L2-normalised maps. Neither
    depends on the attributions' overall scale.
    """
    a, b = a.flatten(1), b.flatten(1)
    if kind == "cosine":
        return (1 - F.cosine_similarity(a, b, dim=1, eps=_EPS)).mean()
    if kind == "mse":
        return (F.normalize(a, dim=1, eps=_EPS) - F.normalize(b, dim=1, eps=_EPS)).pow(2).sum(dim=1).mean()
    raise CamlabError(f"unknown distance {kind!r}; choose one of {', '.join(DISTANCES)}")
