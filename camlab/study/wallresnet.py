"""A walled residual network: the paper's wall before a global-pooling head.

The paper walls a VGG by zeroing its first dense layer's weights for the bottom 9 of 14 feature
rows. A ResNet has no such dense layer: its head averages the last feature map over positions. The
same statement — the head cannot read the bottom rows — is a fixed mask on the last stage's output
before the pooling, so the logits provably ignore those cells while the cells' activations (what
CAMs read at ``layer4``) stay untouched. The last stage keeps stride 1, so at 224x224 the map is the
paper's 14x14 and its wall the paper's 9 rows. Receptive fields of a ResNet's last stage span the
image, so no *pixel* is unseen: the wall is a statement about the cells, and leakage is measured
on them (as :mod:`camlab.study.at_init` does).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from ..checks import finite_number, whole_number
from ..errors import CamlabError
from ..models import Normalize

STAGE_CHANNELS = (64, 128, 256, 512)  # ResNet-18's, times the width multiplier
MIN_WIDTH = 0.25
STAGE_STRIDES = (1, 2, 2, 1)  # ResNet-18's but the last: 14x14 at 224, the paper's grid


@dataclass(frozen=True)
class WallResNetConfig:
    """The walled ResNet's shape: classes, width multiplier, walled rows of the last map, input size."""

    num_classes: int = 8
    width: float = 1.0
    masked_rows: int = 9
    input_size: int = 224

    def __post_init__(self) -> None:
        whole_number("num_classes", self.num_classes, 1, 100_000)
        # Below 1/4 (16 stem channels) the first strided shortcut is a 1x1 convolution from 8 channels or
        # fewer, whose channels-last backward (the training loop's layout) crashes torch 2.14's CPU kernels.
        finite_number("width", self.width, MIN_WIDTH, 4)
        size = whole_number("input_size", self.input_size, 32, 1024)
        if size % 16:
            raise CamlabError(f"input_size must be a multiple of 16 (the stem and two strided stages), got {size}")
        whole_number("masked_rows", self.masked_rows, 0, size // 16 - 1)

    @property
    def feature_size(self) -> int:
        """The side of the last feature map (14 at 224x224)."""
        return self.input_size // 16

    def channels(self, base: int) -> int:
        """``base`` channels times the width multiplier (at least 1)."""
        return max(1, round(base * self.width))


def _stage(inputs: int, outputs: int, stride: int) -> nn.Sequential:
    shortcut = None
    if stride != 1 or inputs != outputs:
        shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))
    return nn.Sequential(BasicBlock(inputs, outputs, stride, shortcut), BasicBlock(outputs, outputs))


class WallResNet(nn.Module):
    """ResNet-18's blocks (two per stage, batch norm) with its last stage at stride 1, and a head
    that averages ``layer4``'s output over the positions it may read: the bottom ``masked_rows``
    rows are multiplied by 0 first (``wall_mask``), so the logits cannot depend on them.
    ``masked_rows=0`` gives the unwalled twin. Takes [0, 1] images and normalises inside."""

    wall_mask: torch.Tensor

    def __init__(self, config: WallResNetConfig = WallResNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.normalize = Normalize()
        widths = [config.channels(c) for c in STAGE_CHANNELS]
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        inputs = [widths[0], *widths[:-1]]
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            _stage(i, o, stride) for i, o, stride in zip(inputs, widths, STAGE_STRIDES))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], config.num_classes)
        side = config.feature_size
        mask = torch.ones(1, 1, side, side)
        if config.masked_rows:
            mask[..., side - config.masked_rows :, :] = 0
        self.register_buffer("wall_mask", mask, persistent=False)

    @property
    def default_layer(self) -> str:
        """The last stage, the layer CAMs read by default and the one the head is walled from."""
        return "layer4"

    def apply_wall(self) -> None:
        """Nothing to re-apply after an optimiser step: this wall is a fixed mask, not weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of [0, 1] images."""
        features = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(self.normalize(x))))))
        return self.fc(torch.flatten(self.pool(features * self.wall_mask), 1))


def masked_resnet(num_classes: int = 8, width: float = 1.0, masked_rows: int = 9, **kwargs: int) -> WallResNet:
    """The walled ResNet: the bottom ``masked_rows`` rows of ``layer4`` unread by the head."""
    return WallResNet(WallResNetConfig(num_classes=num_classes, width=width, masked_rows=masked_rows, **kwargs))


def baseline_resnet(num_classes: int = 8, width: float = 1.0, **kwargs: int) -> WallResNet:
    """The unwalled twin: same architecture, every position of ``layer4`` read."""
    return WallResNet(WallResNetConfig(num_classes=num_classes, width=width, masked_rows=0, **kwargs))
