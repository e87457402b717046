"""Images from files: decoded, converted to RGB and sized for a model, with checks before any work."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import CamlabError

MAX_UPLOAD_PIXELS = 40_000_000


def read_image(data: bytes, size: int = 224) -> tuple[torch.Tensor, str]:
    """Decode PNG/JPEG/WebP bytes to a (3, size, size) tensor in [0, 1] and a note on what was done:
    any mode becomes RGB (alpha dropped, grey replicated), the shorter side is resized to ``size``
    and the centre cropped."""
    try:
        Image.MAX_IMAGE_PIXELS = MAX_UPLOAD_PIXELS
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_UPLOAD_PIXELS:
                raise CamlabError(f"the image is {opened.width}x{opened.height}; the limit is {MAX_UPLOAD_PIXELS:,} pixels")
            mode, original = opened.mode, opened.size
            transparent = "A" in mode or "transparency" in opened.info
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise CamlabError(f"could not read this file as an image (PNG, JPEG or WebP): {exc}") from exc
    scale = size / min(picture.size)
    picture = picture.resize((max(size, round(picture.width * scale)), max(size, round(picture.height * scale))),
                             Image.BILINEAR)
    left, top = (picture.width - size) // 2, (picture.height - size) // 2
    picture = picture.crop((left, top, left + size, top + size))
    note = f"{original[0]}x{original[1]} {mode}"
    if mode != "RGB":
        note += " converted to RGB" + (" (transparency dropped)" if transparent else "")
    if original != (size, size):
        note += f", resized and centre-cropped to {size}x{size}"
    return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float() / 255, note


def load_image(data: bytes, size: int = 224) -> torch.Tensor:
    """:func:`read_image` without the note."""
    return read_image(data, size)[0]
