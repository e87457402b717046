"""Image files: any mode and format becomes RGB at the model's size; bad files a clear error."""
import io

import pytest
import torch
from PIL import Image

from camlab.errors import CamlabError
from camlab.images import MAX_UPLOAD_PIXELS, load_image, read_image


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


def test_read_image_explains_conversions():
    buffer = io.BytesIO()
    Image.new("RGBA", (320, 240), (10, 20, 30, 0)).save(buffer, format="PNG")
    image, note = read_image(buffer.getvalue(), 64)
    assert image.shape == (3, 64, 64)
    assert note == "320x240 RGBA converted to RGB (transparency dropped), resized and centre-cropped to 64x64"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    assert read_image(buffer.getvalue(), 64)[1] == "64x64 RGB"
