"""The drawing widget's fabric.js objects become wall shapes in image coordinates."""
from camlab.app.canvas import shapes_from_canvas


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
