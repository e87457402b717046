"""The drawing widget's fabric.js objects become wall shapes in image coordinates."""
import pytest

from camlab.app.canvas import MAX_POINTS, MAX_SHAPES, drawn_regions, shapes_from_canvas
from camlab.errors import CamlabError


def test_canvas_objects_become_image_coordinates():
    canvas = {"objects": [
        {"type": "rect", "left": 10, "top": 20, "width": 30, "height": 40, "scaleX": 1, "scaleY": 1},
        {"type": "path", "path": [["M", 0, 0], ["Q", 5, 5, 10, 10], ["L", 20, 10]], "strokeWidth": 4},
        {"type": "Rect", "left": 0, "top": 0, "width": 2, "height": 2},  # fabric.js 6 spelling
        {"type": "Polygon", "left": 10, "top": 10, "width": 20, "height": 20, "pathOffset": {"x": 50, "y": 50},
         "points": [{"x": 40, "y": 40}, {"x": 60, "y": 40}, {"x": 60, "y": 60}]},
    ]}
    shapes = shapes_from_canvas(canvas, scale=0.5)
    assert shapes[0] == {"type": "rect", "x0": 5.0, "y0": 10.0, "x1": 20.0, "y1": 30.0}
    assert shapes[1]["type"] == "stroke" and shapes[1]["points"][-1] == [10.0, 5.0] and shapes[1]["width"] == 2.0
    assert shapes[2] == {"type": "rect", "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0}
    assert shapes[3] == {"type": "polygon", "points": [[5.0, 5.0], [15.0, 5.0], [15.0, 15.0]]}


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
