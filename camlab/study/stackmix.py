"""STACK-MIX from any folder of photographs: the paper's protocol for its Table 1.

The paper's STACK-MIX images are two ImageNet photographs of one class stacked vertically into one
224x224 image, so the class object is in both halves and the walled model — which reads only the
top 5 of 14 feature rows — can still find it above the wall. :class:`StackMix` builds the same from
a folder with one sub-folder per class (ImageNet's ``val/`` laid out by class, or any photographs):

    camlab-table1 --models params_vgg16_masked.pt params_vgg16_baseline.pt --data stackmix:/data/imagenet/val

Image *i* is a pure function of (folder listing, seed, i): a class drawn among the folders with at
least two photographs, then two different photographs of it. Each is read as camlab reads any image
(its centre square, ``camlab.images.read_image``) and made a half: ``halves="squash"`` (the default)
resizes the square to size/2 rows, so the whole object is in the half, stretched 2:1; ``"crop"``
keeps the square's middle size/2 rows, nothing stretched but the top and bottom quarters lost.
"""
from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..checks import whole_number
from ..errors import CamlabError
from ..images import IMAGE_SUFFIXES, MAX_IMAGE_BYTES, read_image

STACK_MIX = "stackmix:"  # a --data value naming a folder: stackmix:<folder>
HALVES = ("squash", "crop")


class StackMix(Dataset):
    """``length`` STACK-MIX images (3, size, size) in [0, 1] from the class folders of ``folder``,
    each with its class's index among :attr:`class_names` (the sorted folder names)."""

    def __init__(self, folder: str | Path, length: int = 100, seed: int = 0, size: int = 224,
                 halves: str = "squash") -> None:
        root = Path(folder)
        if not root.is_dir():
            raise CamlabError(f"STACK-MIX needs a folder of class folders; {root} is not a folder")
        if halves not in HALVES:
            raise CamlabError(f"halves is one of {', '.join(HALVES)}, got {halves!r}")
        self.length = whole_number("length", length, 1, 100_000)
        self.size = whole_number("size", size, 16, 1024)
        if self.size % 2:
            raise CamlabError(f"a STACK-MIX image has two halves: its size must be even, got {size}")
        self.seed, self.halves = seed, halves
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.photos = {f.name: sorted(p for p in f.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
                       for f in folders}
        self.class_names = [name for name, photos in self.photos.items() if len(photos) >= 2]
        if not self.class_names:
            raise CamlabError(f"{root} has no class folder with two photographs or more: STACK-MIX stacks two "
                              "photographs of one class")

    def __len__(self) -> int:
        """How many images the set has."""
        return self.length

    def pair(self, index: int) -> tuple[int, Path, Path]:
        """Image ``index``'s class and its two photographs (top, bottom)."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        draw = random.Random(f"stackmix:{self.seed}:{index}")  # a string seed: the same on every platform and run
        label = draw.randrange(len(self.class_names))
        top, bottom = draw.sample(self.photos[self.class_names[label]], 2)
        return label, top, bottom

    def half(self, path: Path) -> torch.Tensor:
        """One photograph as a (3, size/2, size) half."""
        try:
            if path.stat().st_size > MAX_IMAGE_BYTES:  # before reading it into memory
                raise CamlabError(f"the image file is over the {MAX_IMAGE_BYTES // 2**20} MiB limit")
            square, _ = read_image(path.read_bytes(), self.size)
        except CamlabError as exc:
            raise CamlabError(f"{path}: {exc}") from exc
        rows = self.size // 2
        if self.halves == "crop":
            return square[:, rows // 2 : rows // 2 + rows]
        return F.interpolate(square[None], size=(rows, self.size), mode="bilinear", antialias=True,
                             align_corners=False)[0].clamp(0, 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Image ``index`` and its class index."""
        label, top, bottom = self.pair(index)
        return torch.cat([self.half(top), self.half(bottom)], dim=1), label
