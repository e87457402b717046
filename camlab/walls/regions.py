"""Drawn walls: rectangles, polygons and strokes in image pixels, turned into one boolean mask."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from ..errors import CamlabError

MAX_SIDE = 8192
MAX_POINTS = 100_000


def _points(value: object, kind: str, at_least: int, height: int, width: int) -> np.ndarray:
    """(P, 2) int32 pixel coordinates, finite, clipped to a margin around the image (so OpenCV's
    integer arithmetic cannot overflow and far-away points still draw the right edge)."""
    points = np.asarray(value, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] > MAX_POINTS:
        raise CamlabError(f"a {kind} wall needs a list of [x, y] points (at most {MAX_POINTS:,}), "
                          f"got an array of shape {points.shape}")
    if points.shape[0] < at_least:
        raise CamlabError(f"a {kind} wall needs at least {at_least} points, got {points.shape[0]}")
    if not np.isfinite(points).all():
        raise CamlabError(f"a {kind} wall has a point that is not a finite number")
    margin = np.array([width, height], dtype=np.float64)
    return np.round(np.clip(points, -margin, 2 * margin)).astype(np.int32)


def _number(shape: dict, key: str, height: int, width: int) -> float:
    value = float(shape[key])
    if not np.isfinite(value):
        raise CamlabError(f"the wall's {key} is not a finite number: {shape[key]!r}")
    return float(np.clip(value, -2 * max(height, width), 3 * max(height, width)))


def wall_mask(shapes: list[dict], height: int, width: int) -> torch.Tensor:
    """Union of drawn shapes as a boolean (H, W) mask, shapes in image pixel coordinates:

    - ``{"type": "rect", "x0", "y0", "x1", "y1"}`` (corners, any order, inclusive)
    - ``{"type": "polygon", "points": [[x, y], ...]}`` (filled, at least 3 corners)
    - ``{"type": "stroke", "points": [[x, y], ...], "width": w}`` (free-hand line of width w pixels)

    Coordinates may lie outside the image (what falls outside is cut off) but must be finite.
    """
    for name, side in (("height", height), ("width", width)):
        if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= MAX_SIDE:
            raise CamlabError(f"the wall's {name} must be a whole number of pixels in [1, {MAX_SIDE}], got {side!r}")
    if not isinstance(shapes, (list, tuple)):
        raise CamlabError(f"walls are a list of shapes, got {type(shapes).__name__}")
    canvas = np.zeros((height, width), dtype=np.uint8)
    for shape in shapes:
        if not isinstance(shape, dict):
            raise CamlabError(f"a wall shape is a dict with a 'type', got {type(shape).__name__}")
        kind = shape.get("type")
        try:
            if kind == "rect":
                x0, x1 = sorted((_number(shape, "x0", height, width), _number(shape, "x1", height, width)))
                y0, y1 = sorted((_number(shape, "y0", height, width), _number(shape, "y1", height, width)))
                cv2.rectangle(canvas, (round(x0), round(y0)), (round(x1), round(y1)), 1, -1)
            elif kind == "polygon":
                cv2.fillPoly(canvas, [_points(shape["points"], kind, 3, height, width)], 1)
            elif kind == "stroke":
                stroke = _number(shape, "width", height, width) if "width" in shape else 10.0
                if stroke <= 0:
                    raise CamlabError(f"a stroke's width must be positive, got {shape['width']!r}")
                thickness = int(min(round(stroke), 2 * max(height, width)))
                cv2.polylines(canvas, [_points(shape["points"], kind, 1, height, width)], False, 1, max(1, thickness))
            else:
                raise CamlabError(f"unknown wall shape {kind!r}; use rect, polygon or stroke")
        except CamlabError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, cv2.error) as exc:
            raise CamlabError(f"malformed {kind} wall {shape!r}: {exc}") from exc
    return torch.from_numpy(canvas.astype(bool))


# The paper's wall: the head reads the top 5 of 14 feature rows, so its wall covers the bottom 9/14.
PAPER_WALL_FRACTION = 9 / 14


def paper_wall(size: int) -> torch.Tensor:
    """(size, size) bool: the bottom 9/14 of the image, the paper's wall."""
    wall = torch.zeros(size, size, dtype=torch.bool)
    wall[size - round(size * PAPER_WALL_FRACTION) :] = True
    return wall


def check_wall(wall: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A boolean wall of the image's size that covers some but not all pixels, else a clear error."""
    if not isinstance(wall, torch.Tensor):
        raise CamlabError(f"a wall is a boolean (H, W) tensor, got {type(wall).__name__}")
    if tuple(wall.shape) != tuple(shape):
        raise CamlabError(f"the wall is {tuple(wall.shape)} but the image is {tuple(shape)}")
    wall = wall.bool()
    if not wall.any():
        raise CamlabError("the wall covers no pixel: draw a wall first")
    if wall.all():
        raise CamlabError("the wall covers the whole image: nothing is left for the model to see")
    return wall
