"""Noisy linear imputation (Rong et al. 2022, ROAD): removed pixels filled from their neighbours, so the
shape of a removal carries no class information. Images only, no model.

Each removed pixel takes the weighted mean of its 8 neighbours (edge neighbours 1/6, corner
neighbours 1/12, the weights of ROAD's released code; neighbours outside the image are dropped), the
removed ones being unknowns too: one sparse symmetric positive definite system per image (a graph
Laplacian on the removed pixels with the kept ones as boundary), the same for every channel. ROAD's
code solves it with SciPy's sparse LU, one image at a time on the CPU; here a batch of masks is
solved at once on the images' device by conjugate gradients preconditioned with a multigrid V-cycle
(2x2 aggregates, Galerkin coarse operators, damped Jacobi smoothing, a dense solve on the coarsest
grid), to a relative residual of ``tolerance``. Then ``noise`` times a standard normal field is
added to the removed pixels.
"""
from __future__ import annotations

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
_JACOBI = 0.8  # the smoother's damping: below 1 = 2 / Gershgorin's bound on D^-1 A, so the V-cycle stays positive definite
# Constant 2x2 prolongation makes coarse corrections too small by about half; scaling them by 1.5 halves
# the conjugate-gradient iterations (20-25 to 11-13 at 1e-6 on 224x224 holes of 10-90%).
_OVER_CORRECTION = 1.5


def _neighbour_sum(values: torch.Tensor) -> torch.Tensor:
    """The weighted sum of each pixel's 8 neighbours (zero outside the grid): the stencil is the
    separable [1, 2, 1] x [1, 2, 1] minus 4 at the centre, two 1-D passes over each padded image
    flattened, so every shift is a contiguous slice (CPU depthwise convolutions of 3 channels and
    column-shifted 4-D slices are several times slower)."""
    *lead, h, w = values.shape
    row = w + 2
    length = h * row
    padded = F.pad(values, (1, 1, 1, 1)).view(-1, (h + 2) * row)
    vertical = torch.add(padded[:, :length], padded[:, 2 * row :]).add_(padded[:, row : row + length], alpha=2)
    out = torch.empty_like(vertical)
    both = torch.add(vertical[:, : length - 2], vertical[:, 2:], out=out[:, : length - 2])
    both.add_(vertical[:, 1 : length - 1], alpha=2)
    # out[:, r * row + c] is the sum centred on pixel (r, c); the last two columns of each row are spare
    return out.view(*lead, h, row)[..., :w].sub(values, alpha=4)


def _shift(values: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``values[..., i + dy, j + dx]`` at (i, j), 0 where that falls outside the grid."""
    padded = F.pad(values, (1, 1, 1, 1))
    h, w = values.shape[-2:]
    return padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


class _Level:
    """One grid's operator as 9 coefficient planes ``stencil`` (B, 9, h, w): (A y)(i) = sum over
    offsets o of stencil[o](i) * y(i + o), zero on rows that are not unknowns."""

    def __init__(self, stencil: torch.Tensor) -> None:
        self.stencil = stencil
        diagonal = stencil[:, CENTRE : CENTRE + 1]
        self.unknown = diagonal > 0
        self.smoother = torch.where(self.unknown, _JACOBI / diagonal.clamp(min=1e-30), torch.zeros_like(diagonal))

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        padded = F.pad(y, (1, 1, 1, 1))
        out = self.stencil[:, CENTRE : CENTRE + 1] * y
        for o, (dy, dx) in enumerate(OFFSETS):
            if o != CENTRE:
                out = out.addcmul_(self.stencil[:, o : o + 1], padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w])
        return out

    def coarsened(self) -> _Level:
        """The Galerkin operator P^T A P for P constant on 2x2 blocks (the grid padded to even sides)."""
        b, _, h, w = self.stencil.shape
        stencil = F.pad(self.stencil, (0, w % 2, 0, h % 2))
        coarse = stencil.new_zeros(b, 9, (h + 1) // 2, (w + 1) // 2)
        for o, (dy, dx) in enumerate(OFFSETS):
            for py in (0, 1):
                for px in (0, 1):
                    target = 3 * ((py + dy) // 2 + 1) + (px + dx) // 2 + 1
                    coarse[:, target] += stencil[:, o, py::2, px::2]
        return _Level(coarse)


class _Finest(_Level):
    """The finest grid: the same operator as a masked depthwise convolution, A y = u (d y - K * (u y))
    with u the removed pixels and d the in-image weight sum (two separable passes instead of 8 shifts)."""

    def __init__(self, stencil: torch.Tensor, unknown: torch.Tensor) -> None:
        super().__init__(stencil)
        self.mask = unknown
        self.diagonal = stencil[:, CENTRE : CENTRE + 1]

    def apply(self, y: torch.Tensor) -> torch.Tensor:
        """For ``y`` zero off the removed pixels, as every vector of the solver is."""
        return (self.diagonal * y).sub_(self.mask * _neighbour_sum(y))


def _restrict(values: torch.Tensor) -> torch.Tensor:
    """P^T: sums over 2x2 blocks (odd sides padded with zeros), of (B, C, h, w). Pooling is 3x faster on
    a CPU than summing a (h/2, 2, w/2, 2) view; the mean of four values times 4 is their sum, as exact."""
    h, w = values.shape[-2:]
    if h % 2 or w % 2:
        values = F.pad(values, (0, w % 2, 0, h % 2))
    return F.avg_pool2d(values, 2).mul_(4)


def _prolong(values: torch.Tensor, unknown: torch.Tensor) -> torch.Tensor:
    """P: each coarse value copied onto its 2x2 block's unknowns (``unknown``, the finer grid's)."""
    *lead, h, w = values.shape
    blocks = values[..., :, None, :, None].expand(*lead, h, 2, w, 2).reshape(*lead, 2 * h, 2 * w)
    return blocks[..., : unknown.shape[-2], : unknown.shape[-1]] * unknown


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
        self.factor = torch.linalg.cholesky(matrix.double())
        self.unknown = level.unknown
        self.size = (h, w)

    def solve(self, values: torch.Tensor) -> torch.Tensor:
        b, c = values.shape[:2]
        right = (values * self.unknown).flatten(2).transpose(1, 2).double()
        solution = torch.cholesky_solve(right, self.factor).to(values.dtype)
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
        coarse = self(_restrict(residual - level.apply(z)), depth + 1)
        z = z.add_(_prolong(coarse, level.unknown), alpha=_OVER_CORRECTION)
        return z.addcmul_(level.smoother, residual - level.apply(z))


def neighbour_system(images: torch.Tensor, removed: torch.Tensor) -> tuple[_Level, torch.Tensor]:
    """The imputation's operator on the removed pixels and its right-hand side (the kept
    neighbours' weighted values), for ``images`` (B, C, H, W) and ``removed`` (B, H, W) booleans."""
    flat = WEIGHTS.to(images.device, images.dtype).flatten()
    unknown = removed[:, None].to(images.dtype)
    in_image = _neighbour_sum(torch.ones_like(unknown))  # each pixel's weight sum over neighbours inside the image
    stencil = [unknown * in_image if o == CENTRE else -flat[o] * unknown * _shift(unknown, dy, dx)
               for o, (dy, dx) in enumerate(OFFSETS)]
    known = images * (1 - unknown)
    return _Finest(torch.cat(stencil, dim=1), unknown), unknown * _neighbour_sum(known)


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
    rz = (residual * z).sum((2, 3), keepdim=True)
    target = tolerance * right.square().sum((2, 3), keepdim=True).sqrt()
    check = 1 if images.device.type == "cpu" else 4  # a check waits for the device: on a GPU every 4 steps
    for step in range(iterations):
        product = level.apply(direction)
        curvature = (direction * product).sum((2, 3), keepdim=True)
        alpha = torch.where(curvature > 0, rz / curvature.clamp(min=1e-30), torch.zeros_like(rz))
        solution = solution + alpha * direction
        residual = residual - alpha * product
        if step % check == check - 1 and bool((residual.square().sum((2, 3), keepdim=True).sqrt() <= target).all()):
            break
        z = precondition(residual)
        rz_next = (residual * z).sum((2, 3), keepdim=True)
        direction = z + torch.where(rz > 0, rz_next / rz.clamp(min=1e-30), torch.zeros_like(rz)) * direction
        rz = rz_next
    else:
        if not bool((residual.square().sum((2, 3), keepdim=True).sqrt() <= target).all()):
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
