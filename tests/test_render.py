"""Overlays: the map blended over the image, the region outlined."""
import cv2
import numpy as np
import torch

from camlab.render import LABEL_HEIGHT, jpeg_bytes, labelled_grid, overlay, png_bytes


def test_overlay_blends_and_outlines_the_region():
    image = torch.zeros(3, 32, 32)
    heat = torch.zeros(32, 32)
    wall = torch.zeros(32, 32, dtype=torch.bool)
    wall[8:24, 8:24] = True
    out = overlay(image, heat, alpha=0.5, region=wall)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[8, 8:24] == 255).all() and (out[16, 16] != 255).any()


def test_a_labelled_grid_puts_each_tile_under_its_label_in_order():
    tiles = {name: np.full((20, 30, 3), value, dtype=np.uint8) for name, value in (("a", 10), ("b", 100), ("c", 200))}
    grid = labelled_grid(tiles, columns=2, gap=4)
    assert grid.shape == (2 * (LABEL_HEIGHT + 20) + 4, 2 * 30 + 4, 3)
    assert (grid[LABEL_HEIGHT : LABEL_HEIGHT + 20, :30] == 10).all()
    assert (grid[LABEL_HEIGHT : LABEL_HEIGHT + 20, 34:] == 100).all()
    assert (grid[2 * LABEL_HEIGHT + 24 :, :30] == 200).all()
    assert (grid[2 * LABEL_HEIGHT + 24 :, 34:] == 255).all()  # no fourth tile: background
    assert (grid[:LABEL_HEIGHT, :30] < 128).any()  # the label is written on its band


def test_encodings_decode_to_the_picture():
    rng = np.random.default_rng(0)
    rgb = cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (9, 9), 3)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(png_bytes(rgb), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, rgb)
    lossy = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg_bytes(rgb), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(lossy.astype(int) - rgb).mean() < 3


def test_drawn_regions_are_numbered_at_their_centres():
    import numpy as np

    from camlab.render import number_regions

    rgb = np.full((64, 64, 3), 128, dtype=np.uint8)
    left, right = torch.zeros(64, 64, dtype=torch.bool), torch.zeros(64, 64, dtype=torch.bool)
    left[20:40, 2:22], right[20:40, 40:60] = True, True
    numbered = number_regions(rgb.copy(), [left, right])
    marked = (numbered[..., 0] > 180) & (numbered[..., 1] > 150) & (numbered[..., 2] < 90)  # yellowish digits
    assert marked[20:40, 2:22].any() and marked[20:40, 40:60].any() and not marked[:, 25:37].any()
    assert (np.abs(numbered.astype(int) - 128).sum(-1) > 0)[:, 25:37].sum() == 0  # nothing between the regions
