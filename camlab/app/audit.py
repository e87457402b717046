"""The Audit page's work: a visitor's zip of images (or a generated split) audited with
:func:`camlab.audit.run_audit` on the model entry's own copy (its slow lane), so an audit of a few
minutes never holds the lock other visitors' views of the model wait on. Bounded: the zip's size
and image count are checked before any image is decoded, methods are the fast ones.
"""
from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ..audit import (
    AuditImages,
    AuditModel,
    ImageSet,
    Wall,
    attach_masks,
    audit_files,
    open_images,
    preprocessing_for,
    run_audit,
    unpack_zip,
)
from ..errors import CamlabError
from ..registry import get_method
from .state import ModelEntry, slow_model

MAX_ZIP_BYTES = 100 * 2**20
MAX_PAGE_IMAGES = 200  # camlab-audit takes more
GENERATED_SOURCE = "generated:stack-shapes/test"


def _check_zip(data: bytes | None, what: str) -> None:
    if data is not None and len(data) > MAX_ZIP_BYTES:
        raise CamlabError(f"{what} is {len(data) / 2**20:.0f} MiB; the page takes at most "
                          f"{MAX_ZIP_BYTES // 2**20} MiB (camlab-audit takes any size)")


def audit_on_page(entry: ModelEntry, methods: list[str], *, zip_data: bytes | None = None,
                  masks_zip: bytes | None = None, count: int = 20,
                  wall: torch.Tensor | None = None, wall_layer: str | None = None, steps: int = 8,
                  device: str | torch.device = "cpu",
                  on_batch: Callable[[int, int], None] | None = None) -> tuple[dict[str, str], ImageSet]:
    """Audit ``entry``'s model on a zip's images (class folders or flat) or, without one, on the
    first ``count`` generated test images; ``masks_zip``: the images' object masks, mirroring the
    zip's paths (:func:`camlab.audit.attach_masks`); ``wall`` (H, W) is applied as a feature wall
    at ``wall_layer``. Returns the report's files (name -> text) and the images read."""
    slow = [m for m in methods if get_method(m).slow]
    if slow:
        raise CamlabError(f"{', '.join(slow)} run one forward per channel: too slow for an audit on this page "
                          "(camlab-audit runs them)")
    _check_zip(zip_data, "the zip")
    _check_zip(masks_zip, "the masks' zip")
    if masks_zip is not None and zip_data is None:
        raise CamlabError("masks go with a zip of your own images (the generated split brings its own)")
    if not 1 <= count <= MAX_PAGE_IMAGES:
        raise CamlabError(f"audit between 1 and {MAX_PAGE_IMAGES} images on this page")
    loaded = dataclasses.replace(entry.loaded, model=slow_model(entry))
    model = AuditModel(loaded, preprocessing_for(loaded), entry.key)
    with tempfile.TemporaryDirectory(prefix="camlab-page-audit-") as work:
        if zip_data is None:
            images = open_images(GENERATED_SOURCE, loaded.class_names, model.preprocessing, Path(work), count)
        else:
            root = unpack_zip(zip_data, Path(work))
            images = open_images(root, loaded.class_names, model.preprocessing, Path(work))
            if len(images.items) > MAX_PAGE_IMAGES:
                raise CamlabError(f"the zip holds {len(images.items)} readable images; the page audits at most "
                                  f"{MAX_PAGE_IMAGES} (camlab-audit takes more)")
            if masks_zip is not None:
                unpacked = Path(work) / "masks"
                unpacked.mkdir()
                images = attach_masks(images, unpack_zip(masks_zip, unpacked), model.preprocessing, Path(work))
        layer = wall_layer or entry.loaded.default_layer
        if wall is not None and layer is None:
            raise CamlabError("this model names no default layer: pick the layer the wall is on")
        given = None if wall is None or layer is None else Wall(wall.cpu(), layer, "a wall drawn on the first image")
        with entry.slow.lock:  # one slow computation per model at a time
            result = run_audit(model, images, methods, wall=given, steps=steps, device=device, progress=False,
                               on_batch=on_batch, unseen=entry.unseen)  # computed once, when the model loaded
        source = f"{GENERATED_SOURCE} ({count} images)" if zip_data is None else \
            "a zip upload" + (" with masks" if masks_zip is not None else "")
        return audit_files(result, f"the app's Audit page: {entry.key} on {source}"), images


def first_image(entry: ModelEntry, zip_data: bytes | None) -> torch.Tensor:
    """The image a wall is drawn on: the first readable image of the zip (in the order the audit
    reads them), else the first generated test image; (3, size, size) in [0, 1]. Cached per zip
    content: every stroke on the canvas reruns the page."""
    loaded = entry.loaded
    preprocessing = preprocessing_for(loaded)
    if zip_data is not None and len(zip_data) > MAX_ZIP_BYTES:
        raise CamlabError(f"the zip is {len(zip_data) / 2**20:.0f} MiB; the page takes at most "
                          f"{MAX_ZIP_BYTES // 2**20} MiB")
    key = ("audit-first-image", hashlib.sha256(zip_data).hexdigest()[:16] if zip_data is not None else "-")
    with entry.lock:
        cached = entry.cache.slot(key).get("image")
    if cached is not None:
        return cached
    with tempfile.TemporaryDirectory(prefix="camlab-page-audit-") as work:
        if zip_data is None:
            images = open_images(GENERATED_SOURCE, loaded.class_names, preprocessing, Path(work), 1)
        else:
            images = open_images(unpack_zip(zip_data, Path(work)), loaded.class_names, preprocessing, Path(work))
        image = AuditImages(images, preprocessing)[0][0]
    with entry.lock:
        entry.cache.slot(key)["image"] = image
    return image
