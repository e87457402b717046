"""The drawing widget's JSON (streamlit-drawable-canvas, i.e. fabric.js objects) as wall shapes."""
from __future__ import annotations

import torch

from ..errors import CamlabError
from ..walls import wall_mask


def shapes_from_canvas(json_data: dict | None, scale: float = 1.0) -> list[dict]:
    """Convert streamlit-drawable-canvas (fabric.js) objects to wall shapes in image pixels;
    ``scale`` is image pixels per canvas pixel. JSON that is not the widget's gives a CamlabError."""
    try:
        return _shapes(json_data, scale)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CamlabError(f"the drawing could not be read ({type(exc).__name__}: {exc}); clear the canvas and "
                          "draw again") from exc


def _shapes(json_data: dict | None, scale: float) -> list[dict]:
    shapes = []
    for obj in (json_data or {}).get("objects", []):
        kind = str(obj.get("type", "")).lower()  # fabric.js 6 writes "Rect", older versions "rect"
        sx, sy = obj.get("scaleX", 1.0) * scale, obj.get("scaleY", 1.0) * scale
        left, top = obj.get("left", 0.0) * scale, obj.get("top", 0.0) * scale
        if kind == "rect":
            shapes.append({"type": "rect", "x0": left, "y0": top,
                           "x1": left + obj["width"] * sx, "y1": top + obj["height"] * sy})
        elif kind == "polygon":
            # Points are relative to the polygon's centre (pathOffset), placed by left/top.
            offset = obj.get("pathOffset", {"x": 0.0, "y": 0.0})
            cx, cy = left + obj.get("width", 0.0) * sx / 2, top + obj.get("height", 0.0) * sy / 2
            shapes.append({"type": "polygon", "points": [[cx + (p["x"] - offset["x"]) * sx,
                                                           cy + (p["y"] - offset["y"]) * sy] for p in obj["points"]]})
        elif kind == "path":
            points = [[cmd[-2] * scale, cmd[-1] * scale] for cmd in obj.get("path", []) if len(cmd) >= 3]
            closed = any(cmd[0] in ("z", "Z") for cmd in obj.get("path", []))
            if points:
                shapes.append({"type": "polygon", "points": points} if closed else
                              {"type": "stroke", "points": points, "width": obj.get("strokeWidth", 10) * scale})
    return shapes


def drawn_regions(json_data: dict | None, scale: float, size: int) -> list[torch.Tensor]:
    """One (size, size) bool mask per drawn shape, in the order drawn; shapes that cover no pixel
    (a click without a drag) are left out. Malformed shapes raise a CamlabError."""
    regions = [wall_mask([shape], size, size) for shape in shapes_from_canvas(json_data, scale)]
    return [region for region in regions if region.any()]
