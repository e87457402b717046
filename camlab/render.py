"""Pictures of maps: overlays and region outlines as RGB uint8 arrays, and PNG bytes."""
from __future__ import annotations

import cv2
import numpy as np
import torch


def _rgb(image: torch.Tensor) -> np.ndarray:
    return (image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)


WHITE = (255, 255, 255)  # a model's own unseen region
YELLOW = (255, 221, 0)  # drawn walls


def draw_outline(rgb: np.ndarray, region: torch.Tensor | None, colour: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Outline ``region`` ((H, W) bool) on ``rgb`` in place, 2 pixels wide; returns ``rgb``."""
    if region is not None and region.any():
        mask = region.detach().cpu().numpy().astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(rgb, contours, -1, colour, 2)
    return rgb


def outlined(image: torch.Tensor, region: torch.Tensor | None, colour: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image with the region outlined."""
    return draw_outline(_rgb(image), region, colour)


def overlay(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5,
            region: torch.Tensor | None = None, colour: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image under a JET-coloured map in [0, 1], the region outlined."""
    heat = (heatmap.detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8)
    coloured = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return draw_outline(cv2.addWeighted(coloured, alpha, _rgb(image), 1 - alpha, 0), region, colour)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG-encode an RGB uint8 (H, W, 3) array."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()
