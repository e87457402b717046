"""The drawing widget's fabric.js objects become wall shapes in image coordinates."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camlab.app.canvas import MAX_POINTS, MAX_SHAPES, canvas_regions, drawn_regions, shapes_from_canvas
from camlab.errors import CamlabError

DATA = Path(__file__).parent / "data"


RECORDED = json.loads((DATA / "canvas_recorded.json").read_text())


def _on_screen(mode: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(DATA / f"canvas_{mode}.png")).astype(bool))


@pytest.mark.parametrize("mode", ["rect", "polygon", "freedraw"])
def test_each_drawing_mode_walls_what_it_covers_on_screen(mode):
    """The widget's own JSON for a shape drawn in Chromium, against the yellow pixels on screen."""
    screen = _on_screen(mode)
    (region,) = drawn_regions({"objects": RECORDED[mode]["objects"]}, 1.0, 448)
    assert (screen & region).sum() / (screen | region).sum() > (0.9 if mode == "freedraw" else 0.98)
    ys, xs = torch.nonzero(region, as_tuple=True)
    sy, sx = torch.nonzero(screen, as_tuple=True)
    for mine, theirs in ((xs.min(), sx.min()), (xs.max(), sx.max()), (ys.min(), sy.min()), (ys.max(), sy.max())):
        assert abs(int(mine) - int(theirs)) <= 3  # a stroke's corners: fabric mitres them, OpenCV rounds them


def test_a_polygon_walls_where_it_was_drawn_at_image_scale():
    # the case: a polygon over the top-left used to land at the bottom-right
    (region,) = drawn_regions({"objects": RECORDED["polygon"]["objects"]}, 0.5, 224)
    assert region[60, 70] and not region[150:, 150:].any()  # inside the corners clicked, and nowhere else


def test_fabric_placement_origin_scale_rotation_and_path_offset():
    rect = {"type": "Rect", "left": 100, "top": 50, "width": 20, "height": 10, "originX": "center",
            "originY": "center", "scaleX": 2, "angle": 90, "strokeWidth": 0}
    (shapes,) = shapes_from_canvas({"objects": [rect]})
    assert len(shapes) == 1 and shapes[0]["type"] == "polygon"
    np.testing.assert_allclose(shapes[0]["points"], [[105, 30], [105, 70], [95, 70], [95, 30]], atol=1e-9)
    polygon = {"type": "Polygon", "left": 0, "top": 0, "width": 20, "height": 20, "originX": "left", "originY": "top",
               "pathOffset": {"x": 50, "y": 50}, "points": [{"x": 40, "y": 40}, {"x": 60, "y": 40}, {"x": 60, "y": 60}],
               "strokeWidth": 4, "stroke": "#fff"}  # fabric 6's layout: corners relative to the offset, box with stroke
    fill, outline = shapes_from_canvas({"objects": [polygon]}, scale=0.5)[0]
    np.testing.assert_allclose(fill["points"], [[1, 1], [11, 1], [11, 11]])
    assert outline["width"] == 2
    assert outline["points"][-1] == outline["points"][0]  # the stroke goes all the way round
    path = {"type": "Path", "left": 10, "top": 10, "originX": "center", "originY": "center", "strokeWidth": 4,
            "path": [["M", 5, 5], ["Q", 10, 10, 15, 15]]}
    (stroke,) = shapes_from_canvas({"objects": [path]}, scale=0.5)[0]
    assert stroke["type"] == "stroke" and stroke["width"] == 2.0
    np.testing.assert_allclose(stroke["points"], [[2.5, 2.5], [7.5, 7.5]])


def _rect(left=0, top=0):
    return {"type": "rect", "left": left, "top": top, "width": 10, "height": 10}


def test_a_drawing_is_bounded_before_any_region_is_made():
    assert len(drawn_regions({"objects": [_rect(i, i) for i in range(MAX_SHAPES)]}, 1.0, 64)) == MAX_SHAPES
    with pytest.raises(CamlabError, match=f"holds {MAX_SHAPES + 1} shapes; the limit is {MAX_SHAPES}"):
        drawn_regions({"objects": [_rect() for _ in range(MAX_SHAPES + 1)]}, 1.0, 64)
    long_stroke = {"type": "path", "path": [["L", 1, 1]] * (MAX_POINTS + 1)}
    with pytest.raises(CamlabError, match="points; the limit is"):
        drawn_regions({"objects": [long_stroke]}, 1.0, 64)


@pytest.mark.parametrize("value", [10**400, float("inf"), float("nan"), -(10**7), "x"],
                         ids=["beyond float range", "infinite", "NaN", "far outside", "text"])
def test_a_coordinate_outside_any_canvas_is_one_clear_error(value):
    with pytest.raises(CamlabError, match="coordinate|could not be read"):
        shapes_from_canvas({"objects": [_rect(left=value)]})
    with pytest.raises(CamlabError, match="coordinate|could not be read"):
        shapes_from_canvas({"objects": [{"type": "path", "path": [["M", 0, 0], ["L", value, 3]]}]})


def test_the_widgets_last_drawing_is_read_from_its_state_before_the_canvas_is_drawn_again():
    drawing = {"objects": RECORDED["rect"]["objects"]}
    (region,) = canvas_regions({"drawing": {"raw": drawing, "data": None}}, 0.5, 224)
    assert torch.equal(region, drawn_regions(drawing, 0.5, 224)[0])
    assert canvas_regions(None, 0.5, 224) == []  # the first run: no drawing yet
    assert canvas_regions({"drawing": {"raw": {"objects": [{"type": "rect", "left": "x"}]}}}, 0.5, 224) == []
