"""Overlays: the map blended over the image, the region outlined."""
import numpy as np
import torch

from camlab.render import overlay


def test_overlay_blends_and_outlines_the_region():
    image = torch.zeros(3, 32, 32)
    heat = torch.zeros(32, 32)
    wall = torch.zeros(32, 32, dtype=torch.bool)
    wall[8:24, 8:24] = True
    out = overlay(image, heat, alpha=0.5, region=wall)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[8, 8:24] == 255).all() and (out[16, 16] != 255).any()
