"""Drawn walls become one boolean mask; empty, full and wrongly sized ones are refused."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.walls import check_wall, wall_mask


def test_wall_mask_is_the_union_of_rectangles_polygons_and_strokes():
    rect = wall_mask([{"type": "rect", "x0": 10, "y0": 5, "x1": 1, "y1": 0}], 32, 32)
    assert rect.sum() == 10 * 6 and rect[0:6, 1:11].all()
    triangle = wall_mask([{"type": "polygon", "points": [[0, 0], [31, 0], [0, 31]]}], 32, 32)
    assert triangle[1, 1] and not triangle[30, 30]
    stroke = wall_mask([{"type": "stroke", "points": [[0, 16], [31, 16]], "width": 3}], 32, 32)
    assert stroke[16].all() and not stroke[0].any()
    union = wall_mask([{"type": "rect", "x0": 10, "y0": 5, "x1": 1, "y1": 0},
                       {"type": "stroke", "points": [[0, 16], [31, 16]], "width": 3}], 32, 32)
    assert torch.equal(union, rect | stroke)
    with pytest.raises(CamlabError, match="unknown wall shape"):
        wall_mask([{"type": "circle"}], 8, 8)
    with pytest.raises(CamlabError, match="malformed rect"):
        wall_mask([{"type": "rect", "x0": 1}], 8, 8)


def test_empty_full_and_wrongly_sized_walls_are_refused():
    with pytest.raises(CamlabError, match="covers no pixel"):
        check_wall(torch.zeros(8, 8, dtype=torch.bool), (8, 8))
    with pytest.raises(CamlabError, match="whole image"):
        check_wall(torch.ones(8, 8, dtype=torch.bool), (8, 8))
    with pytest.raises(CamlabError, match=r"the wall is \(4, 4\) but the image is \(8, 8\)"):
        check_wall(torch.ones(4, 4), (8, 8))
