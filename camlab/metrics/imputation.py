"""Noisy linear imputation (Rong et al. 2022, ROAD): removed pixels filled from their neighbours, so the
shape of a removal carries no class information. Images only, no model.

Each removed pixel takes the weighted mean of its 8 neighbours (edge neighbours 1/6, corner
neighbours 1/12, the weights of ROAD's released code; neighbours outside the image are dropped), the
removed ones being unknowns too: one sparse symmetric positive definite system per image (a graph
Laplacian on the removed pixels with the kept ones as boundary), the same for every channel. ROAD's
code solves it with SciPy's sparse LU, one image at a time on the CPU; here a batch of masks is
solved at once on the images' device by conjugate gradients preconditioned with a multigrid V-cycle
(every other pixel a coarse point, linear interpolation between them, Galerkin coarse operators,
damped Jacobi smoothing that stays a contraction on every grid, a dense pseudo-inverse on the
coarsest), to a relative residual of ``tolerance``: about 7 iterations at the default 1e-5.
Then ``noise`` times a standard normal field is added to the removed pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch
import torch.nn.functional as F

from ..checks import finite_number, whole_number
from ..errors import CamlabError

# ROAD's neighbour weights (1/6, 1/12) times 12, offsets (dy, dx) in row-major order of the 3x3
# stencil, index 4 the pixel itself. Scaling the equations leaves the solution as it is, and whole
# numbers are exact in float32: with 1/6 rounded, a hole's off-diagonals outweigh its diagonal by
# 3e-8, which the Laplacian's smallest eigenvalue (~1e-4 on a 224-pixel hole) turns into 1e-4 errors.
OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
WEIGHTS = torch.tensor([[1.0, 2.0, 1.0], [2.0, 0.0, 2.0], [1.0, 2.0, 1.0]])
CENTRE = 4
_COARSEST = 8  # grids this small (per side) are solved densely
_JACOBI = 0.8  # the smoother's damping (see _Level): below 1, so the V-cycle stays positive definite
# Coarse point I sits on fine pixel 2I and spreads to 2I +- 1 with weight 1/2 (linear interpolation, per
# axis). Against constant 2x2 blocks (scaled by 1.5) it halves the conjugate-gradient iterations (14 to 7
# at 1e-5 on 224x224 holes of 5-95%) for a third more work per V-cycle.
_SPREAD = {-1: 0.5, 0: 1.0, 1: 0.5}
# Per axis, the (coarse offset e, fine offsets a, b) with A_c(I, I + e) += w(a) w(b) A(2I + a, 2(I + e) + b)
# inside the fine 3-point stencil: the Galerkin product of a 3x3 stencil stays 3x3.
_TRIPLES = tuple((e, a, b) for e in (-1, 0, 1) for a in (-1, 0, 1) for b in (-1, 0, 1) if abs(2 * e + b - a) <= 1)


def _separable_sum(values: torch.Tensor) -> torch.Tensor:
    """The [1, 2, 1] x [1, 2, 1] sum around each pixel, the pixel itself (weight 4) included, zero outside
    the grid: two 1-D passes over each padded image flattened, so every shift is a contiguous slice
    (CPU depthwise convolutions of 3 channels and column-shifted 4-D slices are several times slower)."""
    *lead, h, w = values.shape
    row = w + 2
    length = h * row
    padded = F.pad(values, (1, 1, 1, 1)).view(-1, (h + 2) * row)
    vertical = torch.add(padded[:, :length], padded[:, 2 * row :]).add_(padded[:, row : row + length], alpha=2)
    out = torch.empty_like(vertical)
    both = torch.add(vertical[:, : length - 2], vertical[:, 2:], out=out[:, : length - 2])
    both.add_(vertical[:, 1 : length - 1], alpha=2)
    # out[:, r * row + c] is the sum centred on pixel (r, c); the last two columns of each row are spare
    return out.view(*lead, h, row)[..., :w]


def _neighbour_sum(values: torch.Tensor) -> torch.Tensor:
    """The weighted sum of each pixel's 8 neighbours (ROAD's weights times 12, zero outside the grid)."""
    return _separable_sum(values).sub_(values, alpha=4)


def _window(padded: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Of a grid padded by one on every side, the original grid shifted by (dy, dx): ``values[..., i + dy,
    j + dx]`` at (i, j), 0 where that falls outside."""
    h, w = padded.shape[-2] - 2, padded.shape[-1] - 2
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def _shift(values: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``values[..., i + dy, j + dx]`` at (i, j), 0 where that falls outside the grid."""
    return _window(F.pad(values, (1, 1, 1, 1)), dy, dx)


def _coarse_side(fine: int) -> int:
    """Coarse points along an axis of ``fine`` pixels: one on every even pixel, the last one on pixel
    ``fine`` itself (outside) when ``fine`` is even, so the last pixel has two to interpolate from."""
    return fine // 2 + 1


def _coarsen(planes: torch.Tensor, offsets: int, axis: int) -> torch.Tensor:
    """The Galerkin product along one axis: ``planes`` holds A's coefficients by offset -1, 0, 1 along
    ``axis`` in its dimension ``offsets``; returns the coarse operator's, ``axis`` shortened to m."""
    n = planes.shape[axis]
    m = _coarse_side(n)
    every_other = [slice(None)] * planes.dim()
    shape = list(planes.shape)
    # fine pixel 2J + a for a = -1, 0, 1 is odd[J - 1], even[J], odd[J] (zero outside the grid): copied
    # apart once, every term below reads whole rows (step-2 slices are several times slower)
    shape[axis] = m
    even = planes.new_zeros(shape)
    every_other[axis] = slice(0, None, 2)
    even.narrow(axis, 0, (n + 1) // 2).copy_(planes[tuple(every_other)])
    shape[axis] = m + 1
    odd = planes.new_zeros(shape)
    every_other[axis] = slice(1, None, 2)
    odd.narrow(axis, 1, n // 2).copy_(planes[tuple(every_other)])
    at = {-1: odd.narrow(axis, 0, m), 0: even, 1: odd.narrow(axis, 1, m)}
    coarse = torch.zeros_like(even)
    for e, a, b in _TRIPLES:
        coarse.select(offsets, e + 1).add_(at[a].select(offsets, 2 * e + b - a + 1), alpha=_SPREAD[a] * _SPREAD[b])
    return coarse


def _restrict(values: torch.Tensor) -> torch.Tensor:
    """P^T of (..., h, w): each coarse point sums its pixel and half of each neighbour's, per axis."""
    for axis in (-2, -1):
        n = values.shape[axis]
        m = _coarse_side(n)
        padded = F.pad(values.transpose(axis, -1), (1, 2 * m - n))
        values = padded[..., 1 : 2 * m : 2].add(padded[..., 0 : 2 * m - 1 : 2].add(padded[..., 2 : 2 * m + 1 : 2]),
                                               alpha=0.5).transpose(axis, -1)
    return values


def _prolong(values: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """P: linear interpolation of (..., m_h, m_w) onto the finer grid of ``size`` (h, w)."""
    for axis in (-2, -1):
        m = values.shape[axis]
        moved = values.transpose(axis, -1)
        fine = moved.new_empty(*moved.shape[:-1], 2 * m - 1)
        fine[..., 0::2] = moved
        torch.add(moved[..., :-1], moved[..., 1:], out=fine[..., 1::2]).mul_(0.5)
        values = fine.transpose(axis, -1)
    return values[..., : size[0], : size[1]]


class _Level:
    """One grid's operator as 9 coefficient planes ``stencil`` (B, 9, h, w): (A y)(i) = sum over
    offsets o of stencil[o](i) * y(i + o), zero on rows that are not unknowns."""

    def __init__(self, stencil: torch.Tensor) -> None:
        self.stencil = stencil
        diagonal = stencil[:, CENTRE : CENTRE + 1]
        self.unknown = diagonal > 0
        # Jacobi's diagonal, or half the row's absolute sum where that is larger: then 2 / smoother - A
        # is diagonally dominant, the smoothing a contraction and the V-cycle positive definite on every
        # grid (Galerkin operators of linear interpolation on holes are not diagonally dominant, and
        # plain damped Jacobi there made conjugate gradients stall)
        scale = torch.maximum(diagonal, stencil.abs().sum(1, keepdim=True) / 2)
        self.smoother = torch.where(self.unknown, _JACOBI / scale.clamp(min=1e-30), torch.zeros_like(diagonal))

    @cached_property
    def rows(self) -> torch.Tensor:
        """The planes on rows of w + 2 (two zero columns), the layout of a padded vector flattened, so
        every neighbour is a contiguous slice (strided 4-D slices are twice as slow on a CPU)."""
        return F.pad(self.stencil, (0, 2)).flatten(2)

    def residual(self, right: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``right - A y``."""
        return right - self.apply(y)

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        *lead, h, w = y.shape
        row = w + 2
        length = h * row
        padded = F.pad(y, (1, 1, 1, 2)).flatten(-2)  # a second row below so the last slice stays inside
        out = self.rows[:, CENTRE : CENTRE + 1] * padded[..., row + 1 : row + 1 + length]
        for o, (dy, dx) in enumerate(OFFSETS):
            if o != CENTRE:
                start = (1 + dy) * row + 1 + dx
                out.addcmul_(self.rows[:, o : o + 1], padded[..., start : start + length])
        return out.view(*lead, h, row)[..., :w]

    def coarsened(self) -> _Level:
        """The Galerkin operator P^T A P for :func:`_prolong`'s P, one axis at a time. It can be singular
        (two coarse points that reach the same single removed pixel), harmless: its null vectors are
        those P maps to zero on the unknowns."""
        b, _, h, w = self.stencil.shape
        planes = self.stencil.view(b, 3, 3, h, w)  # (offset y, offset x, y, x)
        coarse = _coarsen(_coarsen(planes, offsets=2, axis=4), offsets=1, axis=3)
        return _Level(coarse.view(b, 9, *coarse.shape[-2:]))


class _Finest(_Level):
    """The finest grid: the same operator as a masked separable sum, A y = (d + 4) y - u S(y) with u the
    removed pixels, d their in-image weight sums and S :func:`_separable_sum` (its centre weight 4 taken
    back on the diagonal), for ``y`` zero off the removed pixels, as every vector of the solver is."""

    def __init__(self, stencil: torch.Tensor, unknown: torch.Tensor) -> None:
        super().__init__(stencil)
        self.mask = unknown
        self.diagonal = stencil[:, CENTRE : CENTRE + 1] + 4 * unknown

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.diagonal * y, self.mask, _separable_sum(y), value=-1)

    def residual(self, right: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(right, self.diagonal, y, value=-1).addcmul_(self.mask, _separable_sum(y))


class _Dense:
    """The coarsest grid's system as batched dense matrices (identity rows off the unknowns)."""

    def __init__(self, level: _Level) -> None:
        b, _, h, w = level.stencil.shape
        cells = h * w
        index = torch.arange(cells, device=level.stencil.device).view(h, w)
        matrix = level.stencil.new_zeros(b, cells, cells)
        for o, (dy, dx) in enumerate(OFFSETS):
            columns = _shift(index[None].float() + 1, dy, dx)[0].long() - 1  # -1 outside the grid
            inside = columns >= 0
            rows = index[inside]
            matrix[:, rows, columns[inside]] += level.stencil[:, o][:, inside]
        unknown = level.unknown.flatten(1)
        matrix = matrix + torch.diag_embed((~unknown).to(matrix.dtype))
        # the pseudo-inverse: exact on the operator's range, zero on the null vectors a singular
        # Galerkin matrix has (see _Level.coarsened), where a factorisation would fail or blow up
        values, self.vectors = torch.linalg.eigh(matrix.double())
        kept = values > 1e-9 * values.amax(-1, keepdim=True)
        self.inverse = torch.where(kept, 1 / values.clamp(min=1e-300), torch.zeros_like(values))[..., None]
        self.unknown = level.unknown
        self.size = (h, w)

    def solve(self, values: torch.Tensor) -> torch.Tensor:
        b, c = values.shape[:2]
        right = (values * self.unknown).flatten(2).transpose(1, 2).double()
        solution = (self.vectors @ (self.inverse * (self.vectors.transpose(1, 2) @ right))).to(values.dtype)
        return solution.transpose(1, 2).reshape(b, c, *self.size) * self.unknown


class _Multigrid:
    """A symmetric V-cycle: the preconditioner of the conjugate gradients."""

    def __init__(self, level: _Level) -> None:
        self.levels = [level]
        while max(self.levels[-1].stencil.shape[-2:]) > _COARSEST:
            self.levels.append(self.levels[-1].coarsened())
        self.coarsest = _Dense(self.levels[-1])

    def __call__(self, residual: torch.Tensor, depth: int = 0) -> torch.Tensor:
        if depth == len(self.levels) - 1:
            return self.coarsest.solve(residual)
        level = self.levels[depth]
        z = level.smoother * residual  # one damped Jacobi step from zero before the coarse correction, one after
        coarse = self(_restrict(level.residual(residual, z)) * self.levels[depth + 1].unknown, depth + 1)
        z = z.addcmul_(_prolong(coarse, z.shape[-2:]), level.unknown)  # the correction on the unknowns only
        return z.addcmul_(level.smoother, level.residual(residual, z))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image and channel, (B, C, 1, 1): the systems' inner products."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2))[..., None, None]


def neighbour_system(images: torch.Tensor, removed: torch.Tensor) -> tuple[_Level, torch.Tensor]:
    """The imputation's operator on the removed pixels and its right-hand side (the kept
    neighbours' weighted values), for ``images`` (B, C, H, W) and ``removed`` (B, H, W) booleans."""
    weights = WEIGHTS.flatten().tolist()
    unknown = removed[:, None].to(images.dtype)
    b, _, h, w = unknown.shape
    padded = F.pad(unknown, (1, 1, 1, 1))
    stencil = unknown.new_empty(b, 9, h, w)
    for o, (dy, dx) in enumerate(OFFSETS):
        torch.mul(unknown, _window(padded, dy, dx), out=stencil[:, o : o + 1])  # one pad for all nine
        stencil[:, o].mul_(-weights[o])
    in_image = _neighbour_sum(torch.ones_like(unknown[:1]))  # each pixel's weight sum over neighbours inside the image
    torch.mul(unknown, in_image, out=stencil[:, CENTRE : CENTRE + 1])
    known = images * (1 - unknown)
    return _Finest(stencil, unknown), unknown * _neighbour_sum(known)


def linear_imputation(images: torch.Tensor, removed: torch.Tensor, tolerance: float = 1e-5,
                      iterations: int = 200) -> torch.Tensor:
    """``images`` (B, C, H, W) with the pixels where ``removed`` (B, H, W) is true replaced by ROAD's
    linear interpolation from their neighbours (no noise). Every image must keep at least one pixel.
    Conjugate gradients stop when every system's residual is below ``tolerance`` times its right-hand
    side's norm, or after ``iterations`` (a clear error if that is not reached)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise CamlabError("images for imputation must be a floating (B, C, H, W) tensor")
    if not isinstance(removed, torch.Tensor) or tuple(removed.shape) != (images.shape[0], *images.shape[-2:]):
        raise CamlabError(f"removed must be (B, H, W) = {(images.shape[0], *images.shape[-2:])}, got "
                          f"{tuple(removed.shape) if isinstance(removed, torch.Tensor) else type(removed).__name__}")
    tolerance = finite_number("tolerance", tolerance, 1e-12, 1.0)
    iterations = whole_number("iterations", iterations, 1, 10_000)
    removed = removed.to(images.device).bool()
    if bool(removed.flatten(1).all(1).any()):
        raise CamlabError("imputation needs at least one kept pixel per image: nothing to interpolate from")
    level, right = neighbour_system(images, removed)
    precondition = _Multigrid(level)
    solution = torch.zeros_like(images)
    residual = right.clone()
    z = precondition(residual)
    direction = z.clone()
    rz = _dot(residual, z)
    target = tolerance * _dot(right, right).sqrt()
    check = 1 if images.device.type == "cpu" else 4  # a check waits for the device: on a GPU every 4 steps
    for step in range(iterations):
        product = level.apply(direction)
        curvature = _dot(direction, product)
        alpha = torch.where(curvature > 0, rz / curvature.clamp(min=1e-30), torch.zeros_like(rz))
        solution.addcmul_(alpha, direction)
        residual.addcmul_(alpha, product, value=-1)
        if step % check == check - 1 and bool((_dot(residual, residual).sqrt() <= target).all()):
            break
        z = precondition(residual)
        rz_next = _dot(residual, z)
        direction.mul_(torch.where(rz > 0, rz_next / rz.clamp(min=1e-30), torch.zeros_like(rz))).add_(z)
        rz = rz_next
    else:
        if not bool((_dot(residual, residual).sqrt() <= target).all()):
            raise CamlabError(f"the imputation did not converge in {iterations} iterations")
    return torch.where(removed[:, None], solution, images)


def noisy_linear_imputation(images: torch.Tensor, removed: torch.Tensor, noise: torch.Tensor | float = 0.0,
                            tolerance: float = 1e-5, iterations: int = 200) -> torch.Tensor:
    """:func:`linear_imputation` plus ``noise`` on the removed pixels: a tensor broadcastable to
    ``images`` (the noise itself, e.g. a seeded standard normal field times its scale) or 0."""
    filled = linear_imputation(images, removed, tolerance, iterations)
    if isinstance(noise, torch.Tensor):
        return torch.where(removed.to(images.device)[:, None], filled + noise.to(filled), filled)
    if finite_number("noise", noise) != 0:
        raise CamlabError("noise other than 0 is a tensor: draw it from a seeded generator")
    return filled
