"""Map post-processing shared by the engine, the metrics and the plots."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Same epsilon as pytorch-grad-cam's scale_cam_image, so display maps agree to float precision.
NORMALISE_EPS = 1e-7


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of a batch (N, ...) to [0, 1]; an all-constant map becomes zeros."""
    flat = maps.flatten(1)
    low = flat.amin(dim=1, keepdim=True)
    shifted = flat - low
    high = shifted.amax(dim=1, keepdim=True)
    return (shifted / (high + NORMALISE_EPS)).view_as(maps)


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear (half-pixel centres, like cv2.INTER_LINEAR) resize of (N, h, w) maps to ``size``."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def layer_map_to_display(raw: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """CAM display convention: ReLU, upsample to the input size, min-max per image."""
    return minmax(upsample(raw.clamp(min=0), size))


def pixel_map_to_display(raw: torch.Tensor) -> torch.Tensor:
    """Pixel attributions (N, C, H, W) -> (N, H, W): largest magnitude over colour channels, min-max."""
    return minmax(raw.abs().amax(dim=1))


def magnitude_map(raw: torch.Tensor, size: Sequence[int], pixel_space: bool) -> torch.Tensor:
    """The display map before min-max: its units are the method's own, so maps of one method
    (or of methods sharing units) can be compared on one colour scale."""
    return raw.abs().amax(dim=1) if pixel_space else upsample(raw.clamp(min=0), size)
