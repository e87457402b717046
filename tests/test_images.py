"""Image files: any mode and format becomes RGB at the model's size; bad files a clear error."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import camlab.images
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


def test_an_image_file_over_the_byte_limit_is_refused_unread(monkeypatch):
    opened = []
    monkeypatch.setattr(camlab.images.Image, "open", lambda *a, **k: opened.append(a))
    with pytest.raises(CamlabError, match="MiB; the limit is 50 MiB"):
        read_image(b"\x89PNG" + b"\0" * (camlab.images.MAX_IMAGE_BYTES + 1))
    assert not opened


def test_read_image_explains_conversions():
    buffer = io.BytesIO()
    Image.new("RGBA", (320, 240), (10, 20, 30, 0)).save(buffer, format="PNG")
    image, note = read_image(buffer.getvalue(), 64)
    assert image.shape == (3, 64, 64)
    assert note == "320x240 RGBA converted to RGB (transparency dropped), centre-cropped and resized to 64x64"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    assert read_image(buffer.getvalue(), 64)[1] == "64x64 RGB"


def test_thin_and_elongated_images_are_refused_before_decoding():
    for size in ((1, 10000), (10000, 1), (40000, 1), (4000, 100)):
        buffer = io.BytesIO()
        Image.new("L", size).save(buffer, format="PNG")  # a few hundred bytes each
        with pytest.raises(CamlabError, match="at least 8 pixels|differ by at most 10x"):
            read_image(buffer.getvalue(), 224)


def test_sixteen_bit_images_keep_their_brightness():
    grey = (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)
    eight, sixteen = io.BytesIO(), io.BytesIO()
    Image.fromarray(grey, "L").save(eight, format="PNG")
    Image.fromarray((grey.astype(np.uint16) * 257).astype("<u2")).save(sixteen, format="PNG")
    a, b = read_image(eight.getvalue(), 64)[0], read_image(sixteen.getvalue(), 64)[0]
    assert abs(float(a.mean()) - float(b.mean())) < 0.01 and torch.allclose(a, b, atol=1 / 255)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(CamlabError, match="bytes"):
        read_image("not bytes")
    with pytest.raises(CamlabError, match=r"whole number of pixels in \[8, 4096\]"):
        read_image(b"x", 10**6)


def test_phone_photos_are_turned_upright_by_their_exif_orientation():
    picture = Image.new("RGB", (40, 20), (0, 0, 255))
    picture.paste((255, 0, 0), (0, 0, 20, 20))  # red on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show": the left edge becomes the top
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", exif=exif.tobytes())
    image, note = read_image(buffer.getvalue(), 16)
    assert "turned upright" in note
    assert image[0, 0].mean() > 0.9 and image[2, 0].mean() < 0.1  # top row red: upright
    assert image[2, -1].mean() > 0.9  # bottom row blue


def test_decode_errors_say_what_is_wrong_not_where_python_keeps_the_file():
    with pytest.raises(CamlabError) as error:
        read_image(b"GIF89a not really")
    assert "not a PNG, JPEG or WebP file" in str(error.value) and "BytesIO" not in str(error.value)
    broken = _encoded("RGB")[:60]  # a PNG cut short
    with pytest.raises(CamlabError) as error:
        read_image(broken)
    assert "BytesIO" not in str(error.value)


def test_a_mask_is_cropped_and_resized_as_its_image_and_must_have_its_size():
    from camlab.images import picture_size, read_mask

    def png(array) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    picture = np.zeros((60, 90, 3), dtype=np.uint8)
    picture[20:40, 50:70] = 255  # a white object right of centre
    mask = np.zeros((60, 90), dtype=np.uint8)
    mask[20:40, 50:70] = 255
    assert picture_size(png(mask)) == (90, 60)
    image = read_image(png(picture), 32, 0.875)[0]
    read = read_mask(png(mask), 32, 0.875, image_size=(90, 60))
    assert read.shape == (32, 32) and read.dtype == torch.bool
    assert torch.equal(read, image.mean(0) > 0.5)  # pixel-aligned with the image it belongs to
    with pytest.raises(CamlabError, match="must have its image's size"):
        read_mask(png(mask[:, :60]), 32, image_size=(90, 60))
    with pytest.raises(CamlabError):
        read_mask(b"not an image", 32, image_size=(90, 60))
