"""Image loading for uploads and overlays: odd formats become RGB, bad files a clear error."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from camlab.errors import CamlabError
from camlab.plotting import MAX_UPLOAD_PIXELS, load_image, overlay


def _encoded(mode: str, size=(300, 200), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=128 if mode in ("L", "I;16") else None).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"), ("RGB", "WEBP"), ("P", "PNG")])
def test_any_mode_and_format_becomes_a_square_rgb_tensor(mode, fmt):
    image = load_image(_encoded(mode, fmt=fmt), size=64)
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1


def test_unreadable_and_huge_images_are_refused_clearly():
    with pytest.raises(CamlabError, match="could not read this file as an image"):
        load_image(b"%PDF-1.4 not an image")
    side = int(MAX_UPLOAD_PIXELS ** 0.5) + 10
    with pytest.raises(CamlabError, match="the limit is"):
        load_image(_encoded("L", size=(side, side)))


def test_overlay_blends_and_outlines_the_wall():
    image = torch.zeros(3, 32, 32)
    heat = torch.zeros(32, 32)
    wall = torch.zeros(32, 32, dtype=torch.bool)
    wall[8:24, 8:24] = True
    out = overlay(image, heat, alpha=0.5, wall=wall)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[8, 8:24] == 255).all() and (out[16, 16] != 255).any()
