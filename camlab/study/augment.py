"""Training augmentation that covers what the faithfulness metrics do to an image, with soft targets.

Average Drop multiplies the image by a map, deletion and insertion keep some pixels and fill the rest
(black, a blur), occlusion blanks regions, and RISE starts from a blurred image. A model trained
only on clean images is out of distribution on all of these, so their readouts measure its
brittleness. Each training batch is therefore changed, image by image and at random, by:

- global changes that keep the class: brightness x s (s log-uniform in [0.1, 1]), contrast, blur,
  noise;
- local changes that remove evidence: multiplication by a random smooth map, a random smooth
  "reveal" mask (pixels above a threshold kept, the rest filled with black, the image's mean colour
  or its RISE blur), erased rectangles, a blanked tile;
- featureless inputs in place of images: uniform colours, the generator's backgrounds without any
  object, noise, RISE-blurred images.

The target is honest about what is left. An object's class is carried by its outline, so the
evidence kept in a tile is the mean, over a band of ``OUTLINE`` pixels either side of the object's
edge and only over pixels the model can see, of how much of each pixel survived (1 untouched, 0
removed; multiplication by a smooth map counts relative to its brightest point, since global
brightness keeps the class). With v the largest evidence over the two tiles, the target is
``w * one_hot + (1 - w) * uniform`` with ``w = clamp((v - 0.15) / 0.35, 0, 1)``: a model should say
"I don't know" when the outline is gone, and only then. Featureless inputs have v = 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from ..metrics.faithfulness import fill_image

OUTLINE = 3  # pixels either side of an object's edge that carry its shape
EVIDENCE_LOW, EVIDENCE_HIGH = 0.15, 0.5


@dataclass(frozen=True)
class AugmentConfig:
    """Probability of each change per training image (featureless: share of the batch replaced)."""

    featureless: float = 0.1
    brightness: float = 0.35
    contrast: float = 0.2
    smooth_map: float = 0.3
    reveal: float = 0.25
    erase: float = 0.2
    blank_tile: float = 0.15
    blur: float = 0.15
    noise: float = 0.2

    def as_dict(self) -> dict:
        """The settings as a plain dict (for the model card)."""
        return asdict(self)

    def scaled(self, factor: float) -> AugmentConfig:
        """Every probability times ``factor`` (a curriculum ramps augmentation in this way)."""
        return AugmentConfig(**{k: v * factor for k, v in asdict(self).items()})


NO_AUGMENTATION = AugmentConfig(**{k: 0.0 for k in AugmentConfig.__dataclass_fields__})


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * (high - low) + low).to(device)


def _chosen(n: int, p: float, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    return (torch.rand(n, generator=generator) < p).to(device)


def smooth_maps(n: int, size: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Random smooth maps (n, size, size) in [0, 1], max 1: noise on a 2..10 grid, upsampled, to a power."""
    maps = []
    for _ in range(n):
        cells = int(torch.randint(2, 11, (1,), generator=generator))
        coarse = torch.rand(1, 1, cells, cells, generator=generator)
        maps.append(F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0, 0])
    maps = torch.stack(maps) if maps else torch.zeros(0, size, size)
    low, high = maps.flatten(1).amin(1), maps.flatten(1).amax(1)
    maps = (maps - low[:, None, None]) / (high - low).clamp(min=1e-6)[:, None, None]
    power = torch.exp(torch.empty(n).uniform_(-0.7, 1.1, generator=generator))
    return (maps ** power[:, None, None]).to(device)


def _fills(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image, what removed pixels become: black, the image's mean colour, its RISE blur, or a colour."""
    n = images.shape[0]
    kind = torch.randint(0, 4, (n,), generator=generator).to(images.device)
    mean = images.mean(dim=(2, 3), keepdim=True).expand_as(images)
    colour = torch.rand(n, 3, 1, 1, generator=generator).to(images).expand_as(images)
    choices = torch.stack([torch.zeros_like(images), mean, fill_image(images, "blur"), colour])
    return choices[kind, torch.arange(n, device=images.device)]


def outline_bands(objects: torch.Tensor, width: int = OUTLINE) -> torch.Tensor:
    """(N, H, W) bool: pixels within ``width`` of an object's edge, on either side."""
    masks = objects.float()[:, None]
    kernel = 2 * width + 1
    dilated = F.max_pool2d(masks, kernel, stride=1, padding=width)
    eroded = -F.max_pool2d(-masks, kernel, stride=1, padding=width)
    return (dilated - eroded)[:, 0] > 0


def evidence_weight(kept: torch.Tensor, objects: torch.Tensor, seen: torch.Tensor, tile_rows: int) -> torch.Tensor:
    """W in [0, 1] per image (see the module docstring) from ``kept`` (N, H, W) in [0, 1], the
    object masks (N, H, W) and the pixels the model can see (H, W)."""
    bands = outline_bands(objects)
    evidence = []
    for rows in (slice(0, tile_rows), slice(tile_rows, None)):
        band = bands[:, rows]
        visible = (kept[:, rows] * band * seen[rows]).flatten(1).sum(1)
        evidence.append(visible / band.flatten(1).sum(1).clamp(min=1))
    best = torch.stack(evidence).amax(0)
    return ((best - EVIDENCE_LOW) / (EVIDENCE_HIGH - EVIDENCE_LOW)).clamp(0, 1)


def augment(images: torch.Tensor, labels: torch.Tensor, objects: torch.Tensor, featureless_pool: torch.Tensor | None,
            config: AugmentConfig, generator: torch.Generator, num_classes: int, seen: torch.Tensor | None = None,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented images (N, 3, H, W) in [0, 1] and soft targets (N, classes).

    ``objects`` are the generator's object masks, ``featureless_pool`` (M, 3, H, W) images with no
    object to draw featureless inputs from, ``seen`` the pixels the model can see (default: all).
    """
    n, _, height, width = images.shape
    device = images.device
    tile_rows = height // 2
    seen = torch.ones(height, width, dtype=torch.bool, device=device) if seen is None else seen.to(device)
    x = images.clone()
    kept = torch.ones(n, height, width, device=device)

    rows = _chosen(n, config.smooth_map, generator, device)
    if rows.any():
        maps = smooth_maps(int(rows.sum()), height, generator, device)
        x[rows] = x[rows] * maps[:, None]
        kept[rows] = kept[rows] * maps

    fills = _fills(x, generator)
    rows = _chosen(n, config.reveal, generator, device)
    if rows.any():
        maps = smooth_maps(int(rows.sum()), height, generator, device)
        coverage = _uniform(int(rows.sum()), 0.05, 0.95, generator, device)
        ranked = maps.flatten(1).sort(dim=1, descending=True).values
        position = (coverage * (ranked.shape[1] - 1)).long()
        threshold = ranked.gather(1, position[:, None])[:, 0]
        keep = (maps >= threshold[:, None, None]).float()
        x[rows] = x[rows] * keep[:, None] + fills[rows] * (1 - keep[:, None])
        kept[rows] = kept[rows] * keep

    rows = _chosen(n, config.erase, generator, device)
    for i in rows.nonzero().flatten().tolist():
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            h, w = (int(v) for v in (torch.rand(2, generator=generator) * 0.4 * height + 0.1 * height))
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            x[i, :, top : top + h, left : left + w] = fills[i, :, top : top + h, left : left + w]
            kept[i, top : top + h, left : left + w] = 0

    rows = _chosen(n, config.blank_tile, generator, device)
    for i in rows.nonzero().flatten().tolist():
        span = slice(0, tile_rows) if torch.rand(1, generator=generator) < 0.5 else slice(tile_rows, None)
        x[i, :, span] = fills[i, :, span]
        kept[i, span] = 0

    rows = _chosen(n, config.brightness, generator, device)
    if rows.any():
        scale = torch.exp(_uniform(int(rows.sum()), torch.log(torch.tensor(0.1)).item(), 0.0, generator, device))
        x[rows] = x[rows] * scale[:, None, None, None]
    rows = _chosen(n, config.contrast, generator, device)
    if rows.any():
        factor = _uniform(int(rows.sum()), 0.3, 1.0, generator, device)[:, None, None, None]
        mean = x[rows].mean(dim=(1, 2, 3), keepdim=True)
        x[rows] = mean + (x[rows] - mean) * factor
    rows = _chosen(n, config.blur, generator, device)
    if rows.any():
        sigma = float(_uniform(1, 0.5, 2.0, generator, "cpu"))
        x[rows] = gaussian_blur(x[rows], kernel_size=[7, 7], sigma=[sigma, sigma])
    rows = _chosen(n, config.noise, generator, device)
    if rows.any():
        sigma = _uniform(int(rows.sum()), 0.0, 0.1, generator, device)[:, None, None, None]
        x[rows] = x[rows] + torch.randn(x[rows].shape, generator=generator).to(device) * sigma

    weight = evidence_weight(kept, objects.to(device), seen, tile_rows)
    rows = _chosen(n, config.featureless, generator, device)
    if rows.any():
        x[rows] = featureless_inputs(x[rows], featureless_pool, generator)
        weight[rows] = 0
    targets = F.one_hot(labels.to(device), num_classes).float()
    targets = weight[:, None] * targets + (1 - weight[:, None]) / num_classes
    return x.clamp(0, 1), targets


def featureless_inputs(images: torch.Tensor, pool: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """One featureless input per row: a uniform colour, a background with no object (from ``pool``,
    when there is one), uniform noise, or the row's image under a heavy blur."""
    n = images.shape[0]
    out = torch.empty_like(images)
    if pool is None or not len(pool):
        kind = torch.tensor([0, 2, 3])[torch.randint(0, 3, (n,), generator=generator)]
    else:
        kind = torch.randint(0, 4, (n,), generator=generator)
    for i in range(n):
        if kind[i] == 0:
            out[i] = torch.rand(3, 1, 1, generator=generator).to(images).expand_as(images[i])
        elif kind[i] == 1 and pool is not None:
            out[i] = pool[int(torch.randint(0, len(pool), (1,), generator=generator))].to(images)
        elif kind[i] == 2:
            out[i] = torch.rand(images[i].shape, generator=generator).to(images)
        else:
            out[i] = fill_image(images[i : i + 1], "blur")[0]
    return out
