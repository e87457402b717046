"""Image helpers for the app and reports: overlays, wall outlines, image loading with checks."""
from __future__ import annotations

import io

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import CamlabError

MAX_UPLOAD_PIXELS = 40_000_000


def _rgb(image: torch.Tensor) -> np.ndarray:
    return (image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)


def _outline(rgb: np.ndarray, wall: torch.Tensor | None) -> np.ndarray:
    if wall is not None and wall.any():
        mask = wall.detach().cpu().numpy().astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(rgb, contours, -1, (255, 255, 255), 2)
    return rgb


def outlined(image: torch.Tensor, wall: torch.Tensor | None) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image with the wall outlined in white."""
    return _outline(_rgb(image), wall)


def overlay(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5,
            wall: torch.Tensor | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image under a JET-coloured map in [0, 1], the wall outlined in white."""
    heat = (heatmap.detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8)
    coloured = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return _outline(cv2.addWeighted(coloured, alpha, _rgb(image), 1 - alpha, 0), wall)


def read_image(data: bytes, size: int = 224) -> tuple[torch.Tensor, str]:
    """Decode PNG/JPEG/WebP bytes to a (3, size, size) tensor in [0, 1] and a note on what was done:
    any mode becomes RGB (alpha dropped, grey replicated), the shorter side is resized to ``size``
    and the centre cropped."""
    try:
        Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_UPLOAD_PIXELS:
                raise CamlabError(f"the image is {opened.width}x{opened.height}; the limit is {MAX_UPLOAD_PIXELS:,} pixels")
            mode, original = opened.mode, opened.size
            transparent = "A" in mode or "transparency" in opened.info
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise CamlabError(f"could not read this file as an image (PNG, JPEG or WebP): {exc}") from exc
    scale = size / min(picture.size)
    picture = picture.resize((max(size, round(picture.width * scale)), max(size, round(picture.height * scale))),
                             Image.BILINEAR)
    left, top = (picture.width - size) // 2, (picture.height - size) // 2
    picture = picture.crop((left, top, left + size, top + size))
    note = f"{original[0]}x{original[1]} {mode}"
    if mode != "RGB":
        note += " converted to RGB" + (" (transparency dropped)" if transparent else "")
    if original != (size, size):
        note += f", resized and centre-cropped to {size}x{size}"
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255, note


def load_image(data: bytes, size: int = 224) -> torch.Tensor:
    """:func:`read_image` without the note."""
    return read_image(data, size)[0]


def heatmap_figure(image: torch.Tensor, heat: torch.Tensor, title: str = "", opacity: float = 0.5,
                   zmax: float | None = None, wall: torch.Tensor | None = None, height: int = 340):
    """A plotly figure: the image (wall outlined) under a hoverable heatmap. ``zmax`` fixes the
    colour range to [0, zmax] so several figures share one scale; None scales to this map."""
    import plotly.graph_objects as go

    base = outlined(image, wall)
    values = heat.detach().cpu().numpy()
    top = float(values.max()) if zmax is None else zmax
    figure = go.Figure([
        go.Image(z=base, hoverinfo="skip"),
        go.Heatmap(z=values, zmin=0.0, zmax=top if top > 0 else 1.0, colorscale="Jet", opacity=opacity,
                   hovertemplate="x %{x}, y %{y}<br>value %{z:.4g}<extra></extra>", colorbar={"thickness": 10}),
    ])
    figure.update_layout(title={"text": title, "font": {"size": 14}}, height=height,
                         margin={"l": 0, "r": 0, "t": 30, "b": 0})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure
