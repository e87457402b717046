"""Generated, deterministic stacked datasets: the offline analogues of STACK-MIX and STACK-GEN.

Every image is two tiles stacked vertically, each tile carrying the image's class, so the class
object also appears in the bottom band that a walled model cannot see. Image ``i`` of a split is
drawn from its own random stream seeded by ``(seed, split, i)``, so any image can be regenerated
alone, in any order, on any machine.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import CamlabError

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "arrow")
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_LENGTHS = {"train": 4000, "val": 400, "test": 800}
VARIANTS = ("stack-shapes", "stack-clutter")


def _polygon(kind: str, radius: float) -> np.ndarray:
    """Unit outline of a shape as (points, 2), before rotation and translation."""
    if kind == "square":
        angles = np.deg2rad([45, 135, 225, 315])
        return np.stack([np.cos(angles), np.sin(angles)], 1) * radius
    if kind == "triangle":
        angles = np.deg2rad([90, 210, 330])
        return np.stack([np.cos(angles), np.sin(angles)], 1) * radius
    if kind == "hexagon":
        angles = np.deg2rad(np.arange(0, 360, 60))
        return np.stack([np.cos(angles), np.sin(angles)], 1) * radius
    if kind == "star":
        angles = np.deg2rad(np.arange(0, 360, 36) + 90)
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.42)
        return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)
    if kind == "cross":
        a, b = radius, radius * 0.33
        return np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a], [-b, b], [-a, b],
                         [-a, -b], [-b, -b]])
    if kind == "arrow":
        a, b = radius, radius * 0.3
        return np.array([[-a, -b], [0, -b], [0, -a * 0.75], [a, 0], [0, a * 0.75], [0, b], [-a, b]])
    raise ValueError(kind)


def _draw_object(canvas: np.ndarray, kind: str, centre: Sequence[float] | np.ndarray, radius: float, angle: float,
                 colour: Sequence[float] | float,
                 line: int = cv2.LINE_AA) -> None:
    if kind == "circle":
        cv2.circle(canvas, (int(centre[0]), int(centre[1])), int(radius), colour, -1, line)
        return
    if kind == "ring":
        thickness = max(2, int(radius * 0.35))
        cv2.circle(canvas, (int(centre[0]), int(centre[1])), int(radius - thickness / 2), colour, thickness, line)
        return
    points = _polygon(kind, radius)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = points @ rotation.T + np.asarray(centre)
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], colour, line, shift=4)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random colour field plus pixel noise, so edges alone do not give the class away."""
    coarse = rng.uniform(0, 255, size=(4, 6, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 12, size=(height, width, 3)).astype(np.float32)
    return np.clip(smooth * 0.6 + 50 + noise, 0, 255)


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray, centre: Sequence[float] | np.ndarray) -> tuple:
    local = background[int(centre[1]), int(centre[0])]
    while True:
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - local).sum() > 180:
            return tuple(float(c) for c in colour)


def _tile(rng: np.random.Generator, label: int, height: int, width: int, clutter: bool,
          with_object: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A tile and the boolean mask of its object's pixels (empty without an object)."""
    tile = _background(rng, height, width)
    mask = np.zeros((height, width), dtype=np.uint8)
    short = min(height, width)
    if clutter:  # distractors that belong to no class: thin lines and small blobs
        for _ in range(rng.integers(2, 6)):
            p1 = rng.uniform([0, 0], [width, height]).astype(int)
            p2 = rng.uniform([0, 0], [width, height]).astype(int)
            cv2.line(tile, tuple(int(v) for v in p1), tuple(int(v) for v in p2),
                     tuple(float(c) for c in rng.uniform(0, 255, 3)), 1, cv2.LINE_AA)
        for _ in range(rng.integers(1, 4)):
            c = rng.uniform([0, 0], [width, height])
            axes = tuple(int(v) for v in rng.uniform(short * 0.03, short * 0.08, 2))
            cv2.ellipse(tile, (int(c[0]), int(c[1])), axes, float(rng.uniform(0, 180)), 0, 360,
                        tuple(float(v) for v in rng.uniform(0, 255, 3)), -1, cv2.LINE_AA)
    if not with_object:
        return tile, mask.astype(bool)
    radius = rng.uniform(0.22, 0.4) * short
    centre = rng.uniform([radius, radius], [width - radius, height - radius])
    colour = _contrasting_colour(rng, tile, centre)
    angle = rng.uniform(0, 2 * math.pi)
    _draw_object(tile, CLASSES[label], centre, radius, angle, colour)
    _draw_object(mask, CLASSES[label], centre, radius, angle, 1, cv2.LINE_8)
    return tile, mask.astype(bool)


def generate_sample(variant: str, split: str, index: int, size: int = 224, seed: int = 0,
                    with_objects: bool = True) -> tuple[np.ndarray, int, np.ndarray]:
    """One image (size, size, 3) uint8 RGB, its label and the (size, size) boolean mask of its two
    objects' pixels, a pure function of its arguments. ``with_objects=False`` draws the same
    backgrounds (and clutter) with no object: a featureless image of the same statistics."""
    if variant not in VARIANTS:
        raise CamlabError(f"unknown dataset {variant!r}; choose one of {', '.join(VARIANTS)}")
    if split not in SPLITS:
        raise CamlabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rng = np.random.default_rng([seed, SPLITS[split], index, VARIANTS.index(variant)])
    label = int(rng.integers(len(CLASSES)))
    top_height = size // 2
    clutter = variant == "stack-clutter"
    top, top_mask = _tile(rng, label, top_height, size, clutter, with_objects)
    bottom, bottom_mask = _tile(rng, label, size - top_height, size, clutter, with_objects)
    image = np.clip(np.concatenate([top, bottom], axis=0), 0, 255).astype(np.uint8)
    return image, label, np.concatenate([top_mask, bottom_mask], axis=0)


def generate_image(variant: str, split: str, index: int, size: int = 224, seed: int = 0) -> tuple[np.ndarray, int]:
    """One image (size, size, 3) uint8 RGB and its label (see :func:`generate_sample`)."""
    image, label, _ = generate_sample(variant, split, index, size, seed)
    return image, label


class StackedDataset(Dataset):
    """Images as float tensors (3, size, size) in [0, 1] (models normalise inside), labels as ints;
    with ``masks=True`` each item also carries the (size, size) boolean mask of its objects."""

    def __init__(self, variant: str = "stack-shapes", split: str = "train", size: int = 224,
                 length: int | None = None, seed: int = 0, masks: bool = False) -> None:
        generate_image(variant, split, 0, 8, seed)  # validates the names early
        self.variant, self.split, self.size, self.seed, self.masks = variant, split, size, seed, masks
        self.length = DEFAULT_LENGTHS[split] if length is None else int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor] | tuple[torch.Tensor, int]:
        sample = self.with_mask(index)
        return sample if self.masks else sample[:2]

    def with_mask(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        """Image (3, H, W) in [0, 1], label and object mask (H, W) of sample ``index``, whatever ``masks`` says."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        image, label, mask = generate_sample(self.variant, self.split, index, self.size, self.seed)
        return torch.from_numpy(image).permute(2, 0, 1).float().div_(255), label, torch.from_numpy(mask)


def write_png_folder(folder: str | Path, variant: str = "stack-shapes", split: str = "test",
                     count: int = 16, size: int = 224, seed: int = 0, class_folders: bool = False) -> list[Path]:
    """Write ``count`` images as ``<index>_<class>.png``, or with ``class_folders`` as
    ``<class>/<index>.png`` (torchvision's ImageFolder layout, what ``camlab-audit`` reads)."""
    folder = Path(folder)
    paths = []
    for index in range(count):
        image, label = generate_image(variant, split, index, size, seed)
        path = folder / CLASSES[label] / f"{index:04d}.png" if class_folders else folder / f"{index:04d}_{CLASSES[label]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths
