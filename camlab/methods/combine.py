"""How the methods combine a layer's features into one map (channel terms summed or projected,
principal projections), walk their extra passes in chunks, and draw seeded noise, shared by every family."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator

import torch

from ..errors import CamlabError

MAX_SAMPLES = 1024  # noisy or integrated copies per image: each costs a forward (and backward)


def pair_chunks(rows: torch.Tensor, chunk_size: int) -> Iterator[tuple[torch.Tensor, int]]:
    """Chunks of ``rows`` with how many rows are done after each (a host int: no device sync)."""
    for start in range(0, rows.numel(), chunk_size):
        yield rows[start : start + chunk_size], min(start + chunk_size, rows.numel())


def weighted_channels(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """Each channel's term weights[n, k] * activations[n, k] of a channel-weighted map, (N, K, h, w)."""
    return weights[:, :, None, None] * activations


def channel_sum(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A method from ``fn(ctx, **options)``, which returns each channel's term of its map (N, K, h, w):
    their sum, or with the added option ``eigen_smooth`` their first principal component
    (pytorch-grad-cam's ``eigen_smooth``), oriented to correlate positively with the sum."""

    @functools.wraps(fn)
    def method(ctx: object, *, eigen_smooth: bool = False, **options: object) -> torch.Tensor:
        terms = fn(ctx, **options)
        return principal_projection(terms, terms.sum(dim=1)) if eigen_smooth else terms.sum(dim=1)

    # the registry reads a method's options from its signature: fn's, plus eigen_smooth
    signature = inspect.signature(fn)
    smooth = inspect.Parameter("eigen_smooth", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)
    method.__signature__ = signature.replace(parameters=[*signature.parameters.values(), smooth])  # type: ignore[attr-defined]
    return method


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


def sample_count(method: str, samples: int, option: str = "samples") -> int:
    """``samples`` (the method's ``option``) if it is a count a request may ask for, else a clear error."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise CamlabError(f"{method} {option} must be between 1 and {MAX_SAMPLES}, got {samples}")
    return samples


def seeded_generator(method: str, seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``: the stream of ``torch.manual_seed(seed)``, whatever device
    the model is on, so a seeded map is the same on a GPU as on the CPU."""
    if not 0 <= seed < 2**63:
        raise CamlabError(f"{method} seed must be between 0 and 2**63 - 1, got {seed}")
    return torch.Generator().manual_seed(seed)


def gaussian_draws(generator: torch.Generator, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws of ``shape`` from the CPU ``generator``, on ``like``'s device and dtype."""
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def noisy_copies(method: str, inputs: torch.Tensor, samples: int, noise: float, seed: int, chunk_size: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int, int]]:
    """SmoothGrad's noisy copies of each image, in chunks: (copies, their image's row, copies done, copies in all).

    Gaussian noise of standard deviation ``noise`` times the image's value range (max - min), as the
    SmoothGrad paper scales it, drawn image after image in batch order from ``seed``, one chunk at a
    time so memory stays one chunk's (the stream is the same as one draw per image whenever a chunk's
    element count is a multiple of 16, as for any image whose pixel count is).
    """
    sample_count(method, samples)
    if noise < 0:
        raise CamlabError(f"{method} noise must be >= 0, got {noise}")
    generator = seeded_generator(method, seed)
    spread = (inputs.flatten(1).amax(dim=1) - inputs.flatten(1).amin(dim=1)) * noise
    for image in range(inputs.shape[0]):
        for chunk, done in pair_chunks(torch.arange(samples, device=inputs.device), chunk_size):
            draws = gaussian_draws(generator, (chunk.numel(), *inputs.shape[1:]), inputs)
            rows = torch.full_like(chunk, image)
            yield inputs[image] + spread[image] * draws, rows, image * samples + done, inputs.shape[0] * samples
