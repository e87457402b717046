"""The drawing widget's JSON (streamlit-drawable-canvas, i.e. fabric.js objects) as wall shapes."""
from __future__ import annotations

import math

import torch

from ..errors import CamlabError
from ..walls import wall_mask

# What one drawing may hold: each shape is one region to analyse (and, for occlusion, one forward
# pass), so a client that sends its own canvas value cannot ask for unbounded work.
MAX_SHAPES = 20
MAX_POINTS = 5000  # per shape: a long free-hand stroke has a few hundred
MAX_COORDINATE = 100_000.0  # canvas pixels, far outside any canvas


def shapes_from_canvas(json_data: dict | None, scale: float = 1.0) -> list[dict]:
    """Convert streamlit-drawable-canvas (fabric.js) objects to wall shapes in image pixels;
    ``scale`` is image pixels per canvas pixel. JSON that is not the widget's, more than
    :data:`MAX_SHAPES` shapes or :data:`MAX_POINTS` points in one, or a coordinate that is not a
    finite number within :data:`MAX_COORDINATE`, gives a CamlabError."""
    try:
        return _shapes(json_data, scale)
    except CamlabError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise CamlabError(f"the drawing could not be read ({type(exc).__name__}: {exc}); clear the canvas and "
                          "draw again") from exc


def _number(value: object) -> float:
    number = float(value)  # bools and numeric strings are fabric's own spellings too
    if not math.isfinite(number) or abs(number) > MAX_COORDINATE:
        raise CamlabError(f"the drawing holds the coordinate {str(value)[:30]}, outside any canvas; clear it and draw again")
    return number


def _shapes(json_data: dict | None, scale: float) -> list[dict]:
    objects = (json_data or {}).get("objects", [])
    if len(objects) > MAX_SHAPES:
        raise CamlabError(f"the drawing holds {len(objects)} shapes; the limit is {MAX_SHAPES}: undo some with the "
                          "canvas toolbar")
    shapes = []
    for obj in objects:
        kind = str(obj.get("type", "")).lower()  # fabric.js 6 writes "Rect", older versions "rect"
        points = obj.get("points") if kind == "polygon" else obj.get("path") if kind == "path" else None
        if points is not None and len(points) > MAX_POINTS:
            raise CamlabError(f"a drawn shape has {len(points)} points; the limit is {MAX_POINTS}")
        sx, sy = _number(obj.get("scaleX", 1.0)) * scale, _number(obj.get("scaleY", 1.0)) * scale
        left, top = _number(obj.get("left", 0.0)) * scale, _number(obj.get("top", 0.0)) * scale
        if kind == "rect":
            shapes.append({"type": "rect", "x0": left, "y0": top,
                           "x1": left + _number(obj["width"]) * sx, "y1": top + _number(obj["height"]) * sy})
        elif kind == "polygon":
            # Points are relative to the polygon's centre (pathOffset), placed by left/top.
            offset = obj.get("pathOffset", {"x": 0.0, "y": 0.0})
            cx = left + _number(obj.get("width", 0.0)) * sx / 2
            cy = top + _number(obj.get("height", 0.0)) * sy / 2
            shapes.append({"type": "polygon", "points": [[cx + (_number(p["x"]) - _number(offset["x"])) * sx,
                                                           cy + (_number(p["y"]) - _number(offset["y"])) * sy]
                                                          for p in obj["points"]]})
        elif kind == "path":
            path = obj.get("path", [])
            points = [[_number(cmd[-2]) * scale, _number(cmd[-1]) * scale] for cmd in path if len(cmd) >= 3]
            closed = any(cmd[0] in ("z", "Z") for cmd in path)
            if points:
                shapes.append({"type": "polygon", "points": points} if closed else
                              {"type": "stroke", "points": points, "width": _number(obj.get("strokeWidth", 10)) * scale})
    return shapes


def drawn_regions(json_data: dict | None, scale: float, size: int) -> list[torch.Tensor]:
    """One (size, size) bool mask per drawn shape, in the order drawn; shapes that cover no pixel
    (a click without a drag) are left out. Malformed shapes raise a CamlabError."""
    regions = [wall_mask([shape], size, size) for shape in shapes_from_canvas(json_data, scale)]
    return [region for region in regions if region.any()]
