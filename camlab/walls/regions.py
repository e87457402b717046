"""Drawn walls: rectangles, polygons and strokes in image pixels, turned into one boolean mask."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..errors import CamlabError


def wall_mask(shapes: list[dict], height: int, width: int) -> torch.Tensor:
    """Union of drawn shapes as a boolean (H, W) mask, shapes in image pixel coordinates:

    - ``{"type": "rect", "x0", "y0", "x1", "y1"}`` (corners, any order, inclusive)
    - ``{"type": "polygon", "points": [[x, y], ...]}`` (filled)
    - ``{"type": "stroke", "points": [[x, y], ...], "width": w}`` (free-hand line of width w)
    """
    canvas = np.zeros((height, width), dtype=np.uint8)
    for shape in shapes:
        kind = shape.get("type")
        try:
            if kind == "rect":
                x0, x1 = sorted((float(shape["x0"]), float(shape["x1"])))
                y0, y1 = sorted((float(shape["y0"]), float(shape["y1"])))
                cv2.rectangle(canvas, (round(x0), round(y0)), (round(x1), round(y1)), 1, -1)
            elif kind == "polygon":
                points = np.round(np.asarray(shape["points"], dtype=np.float64)).astype(np.int32)
                if points.reshape(-1, 2).shape[0] < 3:
                    raise CamlabError(f"a polygon wall needs at least 3 corners, got {points.reshape(-1, 2).shape[0]}")
                cv2.fillPoly(canvas, [points.reshape(-1, 2)], 1)
            elif kind == "stroke":
                points = np.round(np.asarray(shape["points"], dtype=np.float64)).astype(np.int32)
                cv2.polylines(canvas, [points.reshape(-1, 2)], False, 1, max(1, round(float(shape.get("width", 10)))))
            else:
                raise CamlabError(f"unknown wall shape {kind!r}; use rect, polygon or stroke")
        except (KeyError, TypeError, ValueError) as exc:
            raise CamlabError(f"malformed {kind} wall {shape!r}: {exc}") from exc
    return torch.from_numpy(canvas.astype(bool))


def check_wall(wall: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A boolean wall of the image's size that covers some but not all pixels, else a clear error."""
    wall = torch.as_tensor(wall)
    if tuple(wall.shape) != tuple(shape):
        raise CamlabError(f"the wall is {tuple(wall.shape)} but the image is {tuple(shape)}")
    wall = wall.bool()
    if not wall.any():
        raise CamlabError("the wall covers no pixel: draw a wall first")
    if wall.all():
        raise CamlabError("the wall covers the whole image: nothing is left for the model to see")
    return wall
