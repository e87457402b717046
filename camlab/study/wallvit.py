"""A walled vision transformer: the paper's wall on the patch tokens its head reads.

A ViT's head usually reads a class token, which attends to every patch in every block, so no token
is unread. This one has no class token: its head averages the last block's patch tokens over the
top rows of the 14x14 patch grid only (after the final layer norm), so the logits provably ignore
the tokens of the bottom ``masked_rows`` rows — the paper's 9 of 14 — while those tokens (what CAMs
read at the last block) are computed like all the others. Attention mixes every patch into every
token, so no *pixel* is unseen: as for :mod:`camlab.study.wallresnet`, the wall is a statement about
the token cells, and leakage is measured on them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock

from ..checks import finite_number, whole_number
from ..errors import CamlabError
from ..models import Normalize

PATCH = 16
BASE_DIM = 768  # ViT-B's token width, times the width multiplier
HEAD_DIM = 32  # each attention head's width: the number of heads follows from the token width


@dataclass(frozen=True)
class WallViTConfig:
    """The walled ViT's shape: classes, width multiplier, blocks, walled patch rows, input size."""

    num_classes: int = 8
    width: float = 1.0
    depth: int = 4
    masked_rows: int = 9
    input_size: int = 224

    def __post_init__(self) -> None:
        whole_number("num_classes", self.num_classes, 1, 100_000)
        finite_number("width", self.width, HEAD_DIM / BASE_DIM, 4)
        whole_number("depth", self.depth, 1, 48)
        size = whole_number("input_size", self.input_size, 32, 1024)
        if size % PATCH:
            raise CamlabError(f"input_size must be a multiple of the patch size {PATCH}, got {size}")
        whole_number("masked_rows", self.masked_rows, 0, size // PATCH - 1)

    @property
    def feature_size(self) -> int:
        """The side of the patch grid (14 at 224x224)."""
        return self.input_size // PATCH

    @property
    def dim(self) -> int:
        """The token width: ViT-B's 768 times the width multiplier, in whole attention heads."""
        return max(1, round(BASE_DIM * self.width / HEAD_DIM)) * HEAD_DIM


class WallViT(nn.Module):
    """Patch embedding (16x16, learned positions, no class token), ``depth`` of torchvision's ViT
    encoder blocks (``blocks.i``), a final layer norm, and a head that averages the tokens of the
    top ``feature_size - masked_rows`` patch rows. ``masked_rows=0`` gives the unwalled twin, which
    averages every token. Takes [0, 1] images and normalises inside."""

    def __init__(self, config: WallViTConfig = WallViTConfig()) -> None:
        super().__init__()
        self.config = config
        self.normalize = Normalize()
        dim, side = config.dim, config.feature_size
        self.patch_embed = nn.Conv2d(3, dim, PATCH, PATCH)
        self.position = nn.Parameter(torch.empty(1, side * side, dim).normal_(std=0.02))
        self.blocks = nn.Sequential(*(EncoderBlock(dim // HEAD_DIM, dim, 4 * dim, 0.0, 0.0)
                                      for _ in range(config.depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc = nn.Linear(dim, config.num_classes)
        # Tokens are the patch grid in row-major order: the readable rows are the first tokens.
        self.read_tokens = (side - config.masked_rows) * side

    @property
    def default_layer(self) -> str:
        """The last block, whose output tokens the head is walled from and CAMs read."""
        return f"blocks.{self.config.depth - 1}"

    def apply_wall(self) -> None:
        """Nothing to re-apply after an optimiser step: the head reads only the unwalled tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of [0, 1] images."""
        tokens = self.patch_embed(self.normalize(x)).flatten(2).transpose(1, 2) + self.position
        tokens = self.blocks(tokens)
        return self.fc(self.norm(tokens[:, : self.read_tokens]).mean(dim=1))


def masked_vit(num_classes: int = 8, width: float = 1.0, masked_rows: int = 9, **kwargs: int) -> WallViT:
    """The walled ViT: the tokens of the bottom ``masked_rows`` patch rows unread by the head."""
    return WallViT(WallViTConfig(num_classes=num_classes, width=width, masked_rows=masked_rows, **kwargs))


def baseline_vit(num_classes: int = 8, width: float = 1.0, **kwargs: int) -> WallViT:
    """The unwalled twin: same architecture, every patch token read."""
    return WallViT(WallViTConfig(num_classes=num_classes, width=width, masked_rows=0, **kwargs))
