"""Pictures of maps: overlays and region outlines as RGB uint8 arrays, and PNG bytes."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


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


def number_regions(rgb: np.ndarray, regions: list[torch.Tensor], colour: tuple[int, int, int] = YELLOW) -> np.ndarray:
    """``rgb`` with each region's number (1, 2, …, in the order given) at its centre of mass, on a
    dark disc so it reads over any heatmap: the tables' "region 1" is the shape marked 1."""
    picture = Image.fromarray(rgb)
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=13)
    for number, region in enumerate(regions, start=1):
        ys, xs = torch.nonzero(region.detach().cpu(), as_tuple=True)
        if len(xs):
            x, y = float(xs.float().mean()), float(ys.float().mean())
            draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=(0, 0, 0))
            draw.text((x, y), str(number), fill=colour, font=font, anchor="mm")
    return np.asarray(picture).copy()


def outlined(image: torch.Tensor, region: torch.Tensor | None, colour: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image with the region outlined."""
    return draw_outline(_rgb(image), region, colour)


def jet_colours(levels: np.ndarray) -> np.ndarray:
    """RGB uint8 (N, 3): the JET colour of each uint8 level, as :func:`overlay` paints them."""
    return cv2.applyColorMap(levels.astype(np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1].copy()


def overlay(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5,
            region: torch.Tensor | None = None, colour: tuple[int, int, int] = WHITE) -> np.ndarray:
    """RGB uint8 (H, W, 3): the image under a JET-coloured map in [0, 1], the region outlined."""
    heat = (heatmap.detach().cpu().clamp(0, 1).numpy() * 255).astype(np.uint8)
    coloured = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return draw_outline(cv2.addWeighted(coloured, alpha, _rgb(image), 1 - alpha, 0), region, colour)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG-encode an RGB uint8 (H, W, 3) array."""
    return _encode(rgb, ".png", [])


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    """JPEG-encode an RGB uint8 (H, W, 3) array: a tenth of the PNG's bytes for photographs and
    heatmaps, for pictures sent to the browser on every rerun."""
    return _encode(rgb, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality])


def _encode(rgb: np.ndarray, extension: str, params: list[int]) -> bytes:
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"{extension} encoding failed")
    return encoded.tobytes()


def with_colour_bar(rgb: np.ndarray, top: float, width: int = 56) -> np.ndarray:
    """``rgb`` with a JET colour bar on its right, labelled 0 at the bottom and ``top`` at the top
    (the value the map's strongest colour stands for)."""
    height = rgb.shape[0]
    bar = np.full((height, width, 3), 255, dtype=np.uint8)
    margin, thickness = 6, 10
    span = height - 2 * margin
    levels = np.linspace(255, 0, span).round()
    bar[margin : margin + span, 4 : 4 + thickness] = jet_colours(levels)[:, None]
    picture = Image.fromarray(bar)
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=11)
    draw.text((4 + thickness + 3, margin - 2), f"{top:.3g}", fill=(0, 0, 0), font=font)
    draw.text((4 + thickness + 3, margin + span - 11), "0", fill=(0, 0, 0), font=font)
    return np.concatenate([rgb, np.asarray(picture)], axis=1)


def overlay_with_scale(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5, region: torch.Tensor | None = None,
                       top: float = 1.0, label: str | None = None) -> np.ndarray:
    """RGB uint8: :func:`overlay` of a map in [0, 1] with its colour bar (0 to ``top``, the value the
    strongest colour stands for) and, with ``label``, the label above it: a picture that says what it shows."""
    picture = with_colour_bar(overlay(image, heatmap, alpha, region), top)
    return labelled_grid({label: picture}, 1) if label else picture


LABEL_HEIGHT = 22  # pixels above each tile of a labelled grid


def labelled_grid(tiles: dict[str, np.ndarray], columns: int, gap: int = 6) -> np.ndarray:
    """RGB uint8: equally sized (H, W, 3) tiles in rows of ``columns``, each under its label on a
    white band — one picture where the page would otherwise send one per tile."""
    if not tiles:
        raise ValueError("no tiles to arrange")
    height, width, _ = next(iter(tiles.values())).shape
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    cell_h, cell_w = LABEL_HEIGHT + height + gap, width + gap
    canvas = Image.new("RGB", (columns * cell_w - gap, rows * cell_h - gap), (255, 255, 255))
    # PIL's text: anti-aliased and 20x faster than OpenCV's anti-aliased putText
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=LABEL_HEIGHT - 7)
    for index, label in enumerate(tiles):
        draw.text(((index % columns) * cell_w + 2, (index // columns) * cell_h + 3), label, fill=(0, 0, 0), font=font)
    grid = np.asarray(canvas).copy()
    for index, tile in enumerate(tiles.values()):
        top, left = (index // columns) * cell_h + LABEL_HEIGHT, (index % columns) * cell_w
        grid[top : top + height, left : left + width] = tile
    return grid
