"""CAMs that read only the activations of the shared forward: Eigen-CAM, KPCA-CAM, FEM and the
random baseline."""
from __future__ import annotations

import torch
from torch import nn

from ..context import CAMContext
from ..errors import CamlabError
from ..registry import Cost, Family, register_method
from .combine import channel_sum, oriented, principal_projection, seeded_generator, weighted_channels


@register_method("eigencam", family=Family.GRADIENT_FREE_CAM, cost=Cost.FORWARD_ONLY)
def eigencam(ctx: CAMContext) -> torch.Tensor:
    """Eigen-CAM (Muhammad & Yeasin 2020): projection on the first principal component.

    Oriented to correlate positively with the total activation at each position, so the map lights
    up where the features are strong (see :func:`principal_projection`).
    """
    return principal_projection(ctx.activations, ctx.activations.sum(dim=1))


KPCA_KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")
KPCA_MAX_POSITIONS = 4096  # a (positions x positions) kernel per image: 64 MiB at this size


@register_method("kpcacam", family=Family.GRADIENT_FREE_CAM, cost=Cost.FORWARD_ONLY)
def kpcacam(ctx: CAMContext, *, kernel: str = "sigmoid", gamma: float = 0.0, coef0: float = 1.0,
            degree: int = 3) -> torch.Tensor:
    """KPCA-CAM (Karmani et al. 2024): the first kernel-PCA component of the positions' activations.

    The kernels and defaults of scikit-learn's ``KernelPCA`` as pytorch-grad-cam's ``KPCA_CAM`` calls
    it (``gamma`` 0 means 1 / channels); the component times the square root of its eigenvalue, as
    ``fit_transform`` returns it. Its sign is oriented as Eigen-CAM's (scikit-learn makes the
    largest entry positive instead). Positions are limited to 4096 per image (a 64x64 layer).
    """
    if kernel not in KPCA_KERNELS:
        raise CamlabError(f"kpcacam kernel must be one of {', '.join(KPCA_KERNELS)}, got {kernel!r}")
    if degree < 1 or gamma < 0:
        raise CamlabError(f"kpcacam needs degree >= 1 and gamma >= 0, got degree {degree}, gamma {gamma}")
    acts = ctx.activations
    n, k, h, w = acts.shape
    if h * w > KPCA_MAX_POSITIONS:
        raise CamlabError(f"kpcacam needs a kernel over every pair of the layer's {h * w} positions; at most "
                          f"{KPCA_MAX_POSITIONS} are allowed: choose a coarser target layer")
    states = acts.flatten(2).transpose(1, 2).double()
    centred = states - states.mean(dim=1, keepdim=True)
    gram = centred @ centred.transpose(1, 2)
    scale = gamma if gamma > 0 else 1.0 / k
    if kernel == "sigmoid":
        matrix = torch.tanh(scale * gram + coef0)
    elif kernel == "poly":
        matrix = (scale * gram + coef0).pow(degree)
    elif kernel == "rbf":
        norms = gram.diagonal(dim1=1, dim2=2)
        matrix = torch.exp(-scale * (norms[:, :, None] + norms[:, None, :] - 2 * gram).clamp(min=0))
    elif kernel == "cosine":
        norms = gram.diagonal(dim1=1, dim2=2).sqrt().clamp(min=1e-12)
        matrix = gram / (norms[:, :, None] * norms[:, None, :])
    else:
        matrix = gram
    # the kernel centred in feature space, as KernelPCA does before its eigendecomposition
    matrix = (matrix - matrix.mean(dim=1, keepdim=True) - matrix.mean(dim=2, keepdim=True)
              + matrix.mean(dim=(1, 2), keepdim=True))
    values, vectors = torch.linalg.eigh(matrix)
    projection = vectors[..., -1] * values[:, -1:].clamp(min=0).sqrt()
    return oriented(projection, states.sum(dim=2)).to(acts.dtype).view(n, h, w)


@register_method("fem", family=Family.GRADIENT_FREE_CAM, cost=Cost.FORWARD_ONLY)
@channel_sum
def fem(ctx: CAMContext, *, k: float = 2.0) -> torch.Tensor:
    """FEM (Fuad et al. 2020): channel weights are the share of positions above mean + k std.

    Mean and (population) standard deviation are each channel's over the positions, as in
    pytorch-grad-cam's ``FEM``.
    """
    acts = ctx.activations
    threshold = acts.mean(dim=(2, 3), keepdim=True) + k * acts.std(dim=(2, 3), correction=0, keepdim=True)
    return weighted_channels((acts > threshold).to(acts.dtype).mean(dim=(2, 3)), acts)


@register_method("cam", family=Family.GRADIENT_FREE_CAM, cost=Cost.FORWARD_ONLY)
@channel_sum
def cam(ctx: CAMContext) -> torch.Tensor:
    """CAM (Zhou et al. 2016): the layer's channels weighted by the class's row of the linear head.

    Defined only where the class score is that head over the layer's global average (ResNets,
    DenseNets, ... at their last feature map). camlab checks the identity itself, score = mean of
    the map + the head's bias, on every image, and refuses with the size of the gap where it does
    not hold (an MLP head, pooling that is not an average, a layer other than the one pooled).
    """
    classes = ctx.scorer.classes
    if classes is None:
        raise CamlabError("CAM weights channels by a class's row of the linear head: give class targets, not a function")
    linears = [m for m in ctx.model.modules() if isinstance(m, nn.Linear)]
    channels = ctx.activations.shape[1]
    if len(linears) != 1 or linears[0].in_features != channels:
        found = ", ".join(f"{m.in_features}->{m.out_features}" for m in linears) or "none"
        raise CamlabError(f"CAM needs a head of global average pooling and one linear layer reading the target "
                          f"layer's {channels} channels; the model's linear layers: {found}")
    head = linears[0]
    weights = head.weight[classes].to(ctx.activations.dtype)
    terms = weighted_channels(weights, ctx.activations)
    bias = head.bias[classes] if head.bias is not None else torch.zeros_like(ctx.scores)
    gap = (terms.sum(dim=1).mean(dim=(1, 2)) + bias - ctx.scores).abs()
    if bool((gap > 1e-3 * (1 + ctx.scores.abs())).any()):
        raise CamlabError(f"CAM does not apply at {ctx.layer_name}: the class score is not the linear head over "
                          f"this layer's global average (they differ by up to {float(gap.max()):.3g}); "
                          f"choose the feature map the head pools")
    return terms.detach()


@register_method("randomcam", family=Family.BASELINE, cost=Cost.FORWARD_ONLY)
@channel_sum
def randomcam(ctx: CAMContext, *, seed: int = 0) -> torch.Tensor:
    """Sanity baseline: uniform random channel weights in [-1, 1], seeded for reproducibility (a CPU
    generator, so the same weights on every device)."""
    acts = ctx.activations
    weights = torch.rand(acts.shape[:2], generator=seeded_generator("randomcam", seed), dtype=acts.dtype)
    return weighted_channels(2 * weights.to(acts.device) - 1, acts)
