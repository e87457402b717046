"""The drawing widget's JSON (streamlit-drawable-canvas, i.e. fabric.js objects) as wall shapes."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import CamlabError
from ..walls import wall_mask

# What one drawing may hold: each shape is one region to analyse (and, for occlusion, one forward
# pass), so a client that sends its own canvas value cannot ask for unbounded work.
MAX_SHAPES = 20
MAX_POINTS = 5000  # per shape: a long free-hand stroke has a few hundred
MAX_COORDINATE = 100_000.0  # canvas pixels, far outside any canvas


def shapes_from_canvas(json_data: dict | None, scale: float = 1.0) -> list[list[dict]]:
    """streamlit-drawable-canvas (fabric.js) objects as wall shapes in image pixels, one list of
    shapes per drawn object, covering exactly what the object covers on screen: its fill and its
    stroke, placed the way fabric places it (origin, scale, flip, rotation, path offset).
    ``scale`` is image pixels per canvas pixel. JSON that is not the widget's, more than
    :data:`MAX_SHAPES` objects or :data:`MAX_POINTS` points in one, or a coordinate that is not a
    finite number within :data:`MAX_COORDINATE`, gives a CamlabError."""
    try:
        return _shapes(json_data, scale)
    except CamlabError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise CamlabError(f"the drawing could not be read ({type(exc).__name__}: {exc}); clear the canvas and "
                          "draw again") from exc


def _number(value: object) -> float:
    if not isinstance(value, (int, float, str)):
        raise CamlabError(f"the drawing holds {type(value).__name__} where a coordinate belongs; clear it and draw again")
    number = float(value)  # bools and numeric strings are fabric's own spellings too
    if not math.isfinite(number) or abs(number) > MAX_COORDINATE:
        raise CamlabError(f"the drawing holds the coordinate {str(value)[:30]}, outside any canvas; clear it and draw again")
    return number


# fabric.js names an object's origin by a side or a fraction of its size; without one it is the
# top-left corner (fabric 6 and earlier; fabric 7, which the widget ships, writes it out).
_ORIGINS = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


def _origin(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, str):
        if value not in _ORIGINS:
            raise CamlabError(f"the drawing has an object with origin {value[:20]!r}; clear it and draw again")
        return _ORIGINS[value]
    return _number(value)


class _Placement:
    """Where fabric draws an object: local coordinates (relative to the object's centre, before
    scaling) to canvas pixels, and the width of its stroke on screen."""

    def __init__(self, obj: dict) -> None:
        self.sx = _number(obj.get("scaleX", 1.0)) * (-1 if obj.get("flipX") else 1)
        self.sy = _number(obj.get("scaleY", 1.0)) * (-1 if obj.get("flipY") else 1)
        angle = math.radians(_number(obj.get("angle", 0.0)))
        self.cos, self.sin = math.cos(angle), math.sin(angle)
        stroke = _number(obj.get("strokeWidth", 1.0)) if obj.get("stroke", "") is not None else 0.0
        uniform = bool(obj.get("strokeUniform", False))
        width, height = _number(obj.get("width", 0.0)), _number(obj.get("height", 0.0))
        # fabric's box includes the stroke: scaled with the object unless the stroke is uniform
        box_w = width * abs(self.sx) + stroke if uniform else (width + stroke) * abs(self.sx)
        box_h = height * abs(self.sy) + stroke if uniform else (height + stroke) * abs(self.sy)
        self.stroke = stroke if uniform else stroke * math.sqrt(abs(self.sx * self.sy))
        dx, dy = (0.5 - _origin(obj.get("originX"))) * box_w, (0.5 - _origin(obj.get("originY"))) * box_h
        left, top = _number(obj.get("left", 0.0)), _number(obj.get("top", 0.0))
        self.cx, self.cy = left + self.cos * dx - self.sin * dy, top + self.sin * dx + self.cos * dy

    def canvas(self, points: list[tuple[float, float]], scale: float) -> list[list[float]]:
        return [[(self.cx + self.cos * x * self.sx - self.sin * y * self.sy) * scale,
                 (self.cy + self.sin * x * self.sx + self.cos * y * self.sy) * scale] for x, y in points]


def _centred(points: list[tuple[float, float]], offset: object,
             extent: list[tuple[float, float]] | None = None) -> list[tuple[float, float]]:
    """Points relative to fabric's path offset: given, or the centre of the bounding box of
    ``extent`` (default: the points themselves; fabric's own definition for polygons, within half a
    pixel of it for free-hand curves when ``extent`` holds their control points too)."""
    if isinstance(offset, dict):
        ox, oy = _number(offset["x"]), _number(offset["y"])
    else:
        xs, ys = [x for x, _ in extent or points], [y for _, y in extent or points]
        ox, oy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    return [(x - ox, y - oy) for x, y in points]


def _filled(outline: list[list[float]], stroke: float) -> list[dict]:
    shapes = [{"type": "polygon", "points": outline}]
    if stroke > 0:
        shapes.append({"type": "stroke", "points": [*outline, outline[0]], "width": stroke})
    return shapes


def _shapes(json_data: dict | None, scale: float) -> list[list[dict]]:
    objects = (json_data or {}).get("objects", [])
    if len(objects) > MAX_SHAPES:
        raise CamlabError(f"the drawing holds {len(objects)} shapes; the limit is {MAX_SHAPES}: undo some with the "
                          "canvas toolbar")
    drawn = []
    for obj in objects:
        kind = str(obj.get("type", "")).lower()  # fabric.js 6 and later write "Rect", older versions "rect"
        points = (obj.get("points") if kind == "polygon" else obj.get("path") if kind == "path" else None) or []
        if len(points) > MAX_POINTS:
            raise CamlabError(f"a drawn shape has {len(points)} points; the limit is {MAX_POINTS}")
        place = _Placement(obj)
        stroke = place.stroke * scale
        if kind == "rect":
            w, h = _number(obj["width"]) / 2, _number(obj["height"]) / 2
            drawn.append(_filled(place.canvas([(-w, -h), (w, -h), (w, h), (-w, h)], scale), stroke))
        elif kind == "polygon":
            corners = [(_number(p["x"]), _number(p["y"])) for p in points]
            if corners:
                drawn.append(_filled(place.canvas(_centred(corners, obj.get("pathOffset")), scale), stroke))
        elif kind == "path":
            ends = [(_number(cmd[-2]), _number(cmd[-1])) for cmd in points if len(cmd) >= 3]
            every = [(_number(a), _number(b)) for cmd in points for a, b in zip(cmd[1::2], cmd[2::2])]
            if ends:
                line = place.canvas(_centred(ends, obj.get("pathOffset"), extent=every), scale)
                closed = any(str(cmd[0]) in ("z", "Z") for cmd in points if cmd)
                drawn.append(_filled(line, stroke) if closed else
                             [{"type": "stroke", "points": line, "width": max(stroke, scale)}])
    return drawn


def drawn_regions(json_data: dict | None, scale: float, size: int) -> list[torch.Tensor]:
    """One (size, size) bool mask per drawn shape, in the order drawn; shapes that cover no pixel
    (a click without a drag) are left out. Malformed shapes raise a CamlabError."""
    regions = [wall_mask(shapes, size, size) for shapes in shapes_from_canvas(json_data, scale)]
    return [region for region in regions if region.any()]


def canvas_regions(state: Mapping[str, Any], scale: float, size: int) -> list[torch.Tensor]:
    """The regions of the drawing a canvas widget sent on its last interaction (its session state
    ``{"drawing": {"raw": json}}``), read before the canvas is drawn again, so its background can
    number them in the same run; [] when there is none yet or it cannot be read (the drawing's own
    errors are shown where :func:`drawn_regions` reads the canvas's value)."""
    try:
        raw = state["drawing"]["raw"]
        return drawn_regions(raw, scale, size)
    except (KeyError, TypeError, CamlabError):
        return []
