"""Downloadable results: overlay PNGs, raw maps as .npz, and a JSON manifest that says what made them."""
from __future__ import annotations

import io
import json
import platform
from datetime import UTC, datetime

import numpy as np
import torch
import torchvision

from .engine import Explanation
from .render import overlay, png_bytes


def overlay_png(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5,
                wall: torch.Tensor | None = None) -> bytes:
    return png_bytes(overlay(image, heatmap, alpha, wall))


def maps_npz(result: Explanation, image_index: int = 0) -> bytes:
    """Per method ``<method>.raw`` (signed, layer or pixel resolution) and ``<method>.display``
    ([0, 1], input resolution), plus the logits, for one image of the batch."""
    arrays = {"logits": result.logits[image_index].detach().cpu().numpy()}
    for method, cam in result.maps.items():
        arrays[f"{method}.raw"] = cam.raw[image_index].detach().cpu().numpy()
        arrays[f"{method}.display"] = cam.display[image_index].detach().cpu().numpy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def versions(**extra: str) -> dict[str, str]:
    from . import __version__

    return {"camlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "python": platform.python_version(), **extra}


def manifest(*, model: str, architecture: str, layer: str, target_class: int, class_name: str,
             methods: list[str], metrics: dict, image: str, device: str,
             extra_versions: dict[str, str] | None = None, **settings) -> str:
    """JSON text: enough to reproduce a view (model, layer, class, methods, settings) and its numbers."""
    record = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model, "architecture": architecture, "layer": layer,
        "target_class": {"index": target_class, "name": class_name},
        "methods": methods, "metrics": metrics, "image": image, "device": device, "settings": settings,
        "versions": versions(**(extra_versions or {})),
    }
    return json.dumps(record, indent=2, default=float)
