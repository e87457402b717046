"""Conceptor-CAM: conceptor matrices over feature states instead of a weighted channel average.

The paper's full text is not available to us; this is a documented reconstruction.

States are the K-dimensional channel vectors a_p at the H*W positions of the target layer. A base
CAM map b (before ReLU) weights them: positive evidence by relu(b_p), pseudo-negative evidence by
relu(-b_p), or, when b has no negative part, uniformly over the positions in b's lowest quartile.
R+ and R- are the weighted correlation matrices sum_p w_p a_p a_p^T / sum_p w_p, scaled by their
mean eigenvalue so the aperture does not depend on the layer's activation scale. Conceptors are
C = R (R + a^-2 I)^-1 (eigenvalues in [0, 1)); the combined conceptor is C+ AND (NOT C-) with
NOT C = I - C and A AND B = (A^-1 + B^-1 - I)^-1, computed with eigenvalues clipped into
[eps, 1 - eps] so the inverses exist. The saliency at p is the evidence a_p^T C a_p / (a_p^T a_p + eps)
in [0, 1]: how much of the state the positive-and-not-negative concept explains.

``conceptorcam`` is that evidence with Grad-CAM as the base map. ``conceptor-<base>`` multiplies the
evidence by relu(base map), keeping the base method's localisation and using the conceptor to
suppress positions whose features look like the pseudo-negative evidence. Which one is more
faithful on our data is measured by ``python -m camlab.evaluate`` (see README).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ..context import CAMContext
from ..errors import CamlabError
from ..registry import Cost, Family, MethodFn, register_method
from . import gradient

# Chosen on 48 validation images by AD@20 and insertion AUC (scripts/choose_aperture.py; README)
DEFAULT_APERTURE = 0.5
_CLIP = 1e-4


def conceptor(correlation: torch.Tensor, aperture: float) -> torch.Tensor:
    """C = R (R + aperture^-2 I)^-1 for a batch of symmetric PSD matrices (N, K, K)."""
    values, vectors = torch.linalg.eigh(correlation)
    values = values.clamp(min=0)
    return _from_eigen(values / (values + aperture ** -2), vectors)


def _from_eigen(values: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    return (vectors * values[..., None, :]) @ vectors.transpose(-1, -2)


def _symmetric_inverse(m: torch.Tensor, low: float, high: float = float("inf")) -> torch.Tensor:
    """Inverse of a symmetric matrix with its eigenvalues clipped into [low, high] first."""
    values, vectors = torch.linalg.eigh((m + m.transpose(-1, -2)) / 2)
    return _from_eigen(1 / values.clamp(low, high), vectors)


def conceptor_not(c: torch.Tensor) -> torch.Tensor:
    """NOT C = I - C."""
    return torch.eye(c.shape[-1], device=c.device, dtype=c.dtype) - c


def conceptor_and(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A AND B = (A^-1 + B^-1 - I)^-1, with eigenvalues clipped so the inverses exist."""
    eye = torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
    inverse_sum = _symmetric_inverse(a, _CLIP, 1 - _CLIP) + _symmetric_inverse(b, _CLIP, 1 - _CLIP) - eye
    return _symmetric_inverse(inverse_sum, 1.0)  # each clipped inverse is >= 1, so the sum is too


def conceptor_or(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A OR B = NOT (NOT A AND NOT B) (De Morgan)."""
    return conceptor_not(conceptor_and(conceptor_not(a), conceptor_not(b)))


def weighted_correlation(states: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_p w_p a_p a_p^T / sum_p w_p, normalised to mean eigenvalue 1. states (N, P, K), weights (N, P)."""
    weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
    correlation = torch.einsum("np,npk,npl->nkl", weights, states, states)
    scale = torch.diagonal(correlation, dim1=1, dim2=2).mean(dim=1).clamp(min=1e-12)
    return correlation / scale[:, None, None]


def evidence_map(activations: torch.Tensor, base: torch.Tensor, aperture: float = DEFAULT_APERTURE) -> torch.Tensor:
    """Per-position evidence of C+ AND NOT C- from a base map (N, h, w); returns (N, h, w) in [0, 1]."""
    if not aperture > 0:
        raise CamlabError(f"the conceptor aperture must be a positive number, got {aperture!r}")
    n, k, h, w = activations.shape
    states = activations.flatten(2).transpose(1, 2).to(torch.float64)
    flat = base.flatten(1).to(torch.float64)
    positive = flat.clamp(min=0)
    negative = (-flat).clamp(min=0)
    lowest = (flat <= flat.quantile(0.25, dim=1, keepdim=True)).to(flat.dtype)
    negative = torch.where(negative.sum(1, keepdim=True) > 0, negative, lowest)
    c_pos = conceptor(weighted_correlation(states, positive), aperture)
    c_neg = conceptor(weighted_correlation(states, negative), aperture)
    combined = conceptor_and(c_pos, conceptor_not(c_neg))
    explained = torch.einsum("npk,nkl,npl->np", states, combined, states)
    energy = (states * states).sum(dim=2)
    return (explained / (energy + 1e-8)).clamp(0, 1).view(n, h, w).to(activations.dtype)


def conceptor_cam(name: str) -> Callable[[MethodFn], MethodFn]:
    """Register a conceptor method (it reads the shared gradients for its base map)."""
    return register_method(name, family=Family.CONCEPTOR_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True)


@conceptor_cam("conceptorcam")
def conceptorcam(ctx: CAMContext, *, aperture: float = DEFAULT_APERTURE) -> torch.Tensor:
    """Conceptor-CAM: evidence of (Grad-CAM-positive AND NOT pseudo-negative) feature concepts."""
    return evidence_map(ctx.activations, gradient.gradcam(ctx), aperture)


def _modulated(base: MethodFn) -> MethodFn:
    def compute(ctx: CAMContext, *, aperture: float = DEFAULT_APERTURE) -> torch.Tensor:
        raw = base(ctx)
        return evidence_map(ctx.activations, raw, aperture) * raw.clamp(min=0)

    compute.__doc__ = f"Conceptor evidence times relu({base.__name__}): base localisation, negatives suppressed."
    return compute


for _name, _base in (("gradcam", gradient.gradcam), ("gradcam++", gradient.gradcam_plusplus),
                     ("xgradcam", gradient.xgradcam), ("layercam", gradient.layercam),
                     ("hirescam", gradient.hirescam)):
    conceptor_cam(f"conceptor-{_name}")(_modulated(_base))
