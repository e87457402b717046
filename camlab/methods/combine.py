"""How the methods combine a layer's features into one map (channel-weighted sums, principal
projections) and walk their extra passes in chunks, shared by every family."""
from __future__ import annotations

from collections.abc import Iterator

import torch


def pair_chunks(rows: torch.Tensor, chunk_size: int) -> Iterator[tuple[torch.Tensor, int]]:
    """Chunks of ``rows`` with how many rows are done after each (a host int: no device sync)."""
    for start in range(0, rows.numel(), chunk_size):
        yield rows[start : start + chunk_size], min(start + chunk_size, rows.numel())


def weighted_sum(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """sum_k weights[n, k] * activations[n, k] -> (N, h, w)."""
    return torch.einsum("nk,nkhw->nhw", weights, activations)


def principal_projection(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Each position's centred features (N, K, h, w) projected on their first principal component,
    (N, h, w). The sign of a principal component is arbitrary (pytorch-grad-cam takes whatever LAPACK
    returns); here the projection is oriented to correlate positively with ``reference`` (N, h, w)."""
    n, k, h, w = features.shape
    states = features.flatten(2).transpose(1, 2)  # (N, HW, K)
    centred = states - states.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return oriented(torch.einsum("npk,nk->np", centred, vh[:, 0, :]), reference.flatten(1)).view(n, h, w)


def oriented(projection: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``projection`` (N, P) times the sign that makes it correlate positively with ``reference``."""
    sign = torch.sign((projection * (reference - reference.mean(dim=1, keepdim=True))).sum(dim=1))
    return projection * torch.where(sign == 0, torch.ones_like(sign), sign)[:, None]
