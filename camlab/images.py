"""Images from files: decoded, converted to RGB and sized for a model, with checks before any work.

Files above :data:`MAX_IMAGE_BYTES` are refused unread; then the header is read: images above
:data:`MAX_UPLOAD_PIXELS`, thinner than :data:`MIN_SIDE` pixels or longer than :data:`MAX_ASPECT`
times their width are refused before any pixel is decoded.
The centre square is cropped at the original resolution and only then resized, so a tiny file that
declares a long thin image never becomes a large array. 16-bit and 32-bit grey images are scaled
by their bit depth (not clipped to white); alpha is dropped; palettes and grey become RGB.
"""
from __future__ import annotations

import io
import re

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CamlabError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")  # what a folder of images holds
MAX_UPLOAD_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 50 * 2**20  # a 40-megapixel photograph is ~20 MB as JPEG or WebP
MIN_SIDE = 8
MAX_ASPECT = 10
ORIENTATION_TAG = 0x0112  # EXIF: how the camera was held
_DECODE_ERRORS = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError,
                  TypeError, IndexError, KeyError, ZeroDivisionError, MemoryError, AttributeError)


def _to_rgb(picture: Image.Image) -> Image.Image:
    """8-bit RGB from any Pillow mode; wide grey modes are scaled by their range, not clipped."""
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(picture, dtype=np.float64)
        if not np.isfinite(values).all():
            raise CamlabError("the image holds non-finite values")
        if picture.mode.startswith("I;16"):
            top = 65535.0
        elif picture.mode == "F":
            top = 1.0 if values.min() >= 0 and values.max() <= 1 else max(float(values.max()), 1e-12)
        else:  # 32-bit integers: the smallest common bit depth that holds the values
            top = next((float(2 ** bits - 1) for bits in (8, 16, 32) if values.max() <= 2 ** bits - 1), float(values.max()))
        grey = np.clip(values / top * 255, 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return picture.convert("RGB")


def check_image_size(width: int, height: int) -> None:
    """Refuse sizes that are too large, too small or too elongated to explain, before decoding."""
    if width * height > MAX_UPLOAD_PIXELS:
        raise CamlabError(f"the image is {width}x{height}; the limit is {MAX_UPLOAD_PIXELS:,} pixels")
    if min(width, height) < MIN_SIDE:
        raise CamlabError(f"the image is {width}x{height}; both sides must be at least {MIN_SIDE} pixels")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise CamlabError(f"the image is {width}x{height}; its sides may differ by at most {MAX_ASPECT}x "
                          "(crop it closer to a square first)")


def read_image(data: bytes, size: int = 224, crop_fraction: float = 1.0) -> tuple[torch.Tensor, str]:
    """Decode PNG/JPEG/WebP bytes to a (3, size, size) tensor in [0, 1] and a note on what was done:
    any mode becomes RGB (alpha dropped, grey replicated), the centre square (``crop_fraction`` of
    the shorter side: torchvision's resize-then-crop is 224/256) is cropped and resized to ``size``.
    Anything that cannot be read this way is a :class:`CamlabError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CamlabError(f"an image file is bytes, got {type(data).__name__}")
    if len(data) > MAX_IMAGE_BYTES:
        raise CamlabError(f"the image file is {len(data) / 2**20:.0f} MiB; the limit is {MAX_IMAGE_BYTES // 2**20} MiB")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIDE <= size <= 4096:
        raise CamlabError(f"the image size must be a whole number of pixels in [{MIN_SIDE}, 4096], got {size!r}")
    try:
        with Image.open(io.BytesIO(bytes(data))) as opened:
            check_image_size(*opened.size)
            return prepare_picture(opened, size, crop_fraction)
    except CamlabError:
        raise
    except UnidentifiedImageError as exc:
        raise CamlabError(f"could not read this file as an image: it is not a PNG, JPEG or WebP file (it starts with "
                          f"{bytes(data[:8])!r})") from exc
    except _DECODE_ERRORS as exc:  # Pillow reports broken files through many exception types
        # Pillow's messages can quote its in-memory file object (<_io.BytesIO object at 0x…>), which says nothing
        reason = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the file", str(exc)) or type(exc).__name__
        raise CamlabError(f"could not read this file as an image (PNG, JPEG or WebP): {reason}") from exc


def prepare_picture(opened: Image.Image, size: int, crop_fraction: float = 1.0) -> tuple[torch.Tensor, str]:
    """A Pillow image as a (3, size, size) tensor in [0, 1] (turned upright by its EXIF orientation,
    as a phone camera records it; the centre square of ``crop_fraction`` of the shorter side
    cropped at its own resolution, then resized) and a note on what was done."""
    if isinstance(crop_fraction, bool) or not isinstance(crop_fraction, (int, float)) or not 0.1 <= crop_fraction <= 1:
        raise CamlabError(f"the crop fraction is a share of the shorter side in [0.1, 1], got {crop_fraction!r}")
    orientation = opened.getexif().get(ORIENTATION_TAG, 1)
    if orientation != 1:
        opened = ImageOps.exif_transpose(opened)
    mode, original = opened.mode, opened.size
    transparent = "A" in mode or "transparency" in opened.info
    side = max(1, round(min(original) * crop_fraction))
    left, top = (original[0] - side) // 2, (original[1] - side) // 2
    picture = _to_rgb(opened.crop((left, top, left + side, top + side)))
    if side != size:
        picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(picture).copy()
    note = f"{original[0]}x{original[1]} {mode}" + (" turned upright (EXIF orientation)" if orientation != 1 else "")
    if mode != "RGB":
        note += " converted to RGB" + (" (transparency dropped)" if transparent else "")
    if original != (size, size) or crop_fraction != 1:
        share = f" {100 * crop_fraction:.1f}%" if crop_fraction != 1 else ""
        note += f", centre{share}-cropped and resized to {size}x{size}"
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255, note


def picture_size(data: bytes) -> tuple[int, int]:
    """An image file's (width, height) from its header (nothing decoded), turned as its EXIF
    orientation turns it; a file that is not an image is a :class:`CamlabError`."""
    try:
        with Image.open(io.BytesIO(bytes(data))) as opened:
            width, height = opened.size
            turned = opened.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8)  # a quarter turn swaps the sides
    except _DECODE_ERRORS as exc:
        raise CamlabError("could not read this file as an image (PNG, JPEG or WebP)") from exc
    return (height, width) if turned else (width, height)


def read_mask(data: bytes, size: int = 224, crop_fraction: float = 1.0,
              image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """An object mask file (bright = object, any image mode) as a (size, size) bool tensor, cropped
    and resized as :func:`read_image` crops and resizes the image it belongs to, so the two stay
    pixel-aligned; ``image_size``: that image's (width, height), which the mask must have."""
    if image_size is not None and picture_size(data) != tuple(image_size):
        width, height = picture_size(data)
        raise CamlabError(f"the mask is {width}x{height}, its image {image_size[0]}x{image_size[1]}: a mask must "
                          "have its image's size")
    return read_image(data, size, crop_fraction)[0].mean(0) > 0.5


def load_image(data: bytes, size: int = 224) -> torch.Tensor:
    """:func:`read_image` without the note."""
    return read_image(data, size)[0]
