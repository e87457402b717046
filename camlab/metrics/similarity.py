"""How alike two maps are: maps only, no model. Rows of (N, ...) tensors are compared pairwise."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import CamlabError

_EPS = 1e-12
DISTANCES = ("cosine", "mse")


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation per row of (N, ...) tensors (ties broken by order)."""
    ranks = [x.argsort(dim=1).argsort(dim=1).to(torch.float64) for x in (a.flatten(1), b.flatten(1))]
    ra, rb = (r - r.mean(dim=1, keepdim=True) for r in ranks)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp(min=_EPS)


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
