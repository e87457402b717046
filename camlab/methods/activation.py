"""CAMs that read only the activations of the shared forward: Eigen-CAM and the random baseline."""
from __future__ import annotations

import torch

from ..context import CAMContext
from ..registry import Cost, Family, register_method
from .gradient import weighted_sum


@register_method("eigencam", family=Family.GRADIENT_FREE_CAM, cost=Cost.FORWARD_ONLY)
def eigencam(ctx: CAMContext) -> torch.Tensor:
    """Eigen-CAM (Muhammad & Yeasin 2020): projection on the first principal component.

    The sign of a principal component is arbitrary (pytorch-grad-cam takes whatever LAPACK
    returns). We fix it: the projection is oriented to correlate positively with the total
    activation at each position, so the map lights up where the features are strong.
    """
    acts = ctx.activations
    n, k, h, w = acts.shape
    states = acts.flatten(2).transpose(1, 2)  # (N, HW, K)
    centred = states - states.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = torch.einsum("npk,nk->np", centred, vh[:, 0, :])
    energy = states.sum(dim=2)
    sign = torch.sign((projection * (energy - energy.mean(dim=1, keepdim=True))).sum(dim=1))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return (projection * sign[:, None]).view(n, h, w)


@register_method("randomcam", family=Family.BASELINE, cost=Cost.FORWARD_ONLY)
def randomcam(ctx: CAMContext, *, seed: int = 0) -> torch.Tensor:
    """Sanity baseline: uniform random channel weights in [-1, 1], seeded for reproducibility."""
    acts = ctx.activations
    generator = torch.Generator(device=acts.device).manual_seed(int(seed))
    weights = torch.rand(acts.shape[:2], generator=generator, device=acts.device, dtype=acts.dtype)
    return weighted_sum(2 * weights - 1, acts)
