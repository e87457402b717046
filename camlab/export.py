"""Downloadable results: overlay PNGs, raw maps as .npz, and a JSON manifest that says what made them."""
from __future__ import annotations

import hashlib
import io
import json
import platform
from datetime import UTC, datetime

import numpy as np
import torch
import torchvision

from .engine import Explanation
from .render import overlay_with_scale, png_bytes


def overlay_png(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5, wall: torch.Tensor | None = None,
                label: str | None = None, top: float = 1.0) -> bytes:
    """PNG of a map in [0, 1] over the image with its colour bar (0 to ``top``) and, with ``label``
    (e.g. the method's name), the label above it, so the file says what it shows."""
    return png_bytes(overlay_with_scale(image, heatmap, alpha, wall, top, label))


def tensor_sha256(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' values in order (float32 bytes of an image, a model's weights)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_identity(model: torch.nn.Module, name: str, architecture: str, card: dict) -> dict:
    """What identifies a model in a report: its name, architecture, what its card says of its
    weights, and a SHA-256 of every parameter and buffer (the same weights give the same hash)."""
    return {"name": name, "architecture": architecture, "weights": card.get("weights", ""),
            "weights_sha256": tensor_sha256(*model.state_dict().values())}


def maps_npz(result: Explanation, image_index: int = 0) -> bytes:
    """Per method ``<method>.raw`` (signed, layer or pixel resolution) and ``<method>.display``
    ([0, 1], input resolution), plus the logits, for one image of the batch."""
    arrays = {"logits": result.logits[image_index].detach().cpu().numpy()}
    for method, cam in result.maps.items():
        arrays[f"{method}.raw"] = cam.raw[image_index].detach().cpu().numpy()
        arrays[f"{method}.display"] = cam.display[image_index].detach().cpu().numpy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def versions(**extra: str) -> dict[str, str]:
    """The versions of camlab, torch, torchvision, numpy and Python, plus ``extra``."""
    from . import __version__

    return {"camlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "python": platform.python_version(), **extra}


def manifest(*, model: str | dict, architecture: str, layer: str, target_class: int, class_name: str,
             methods: list[str], metrics: dict, image: str | dict, device: str,
             extra_versions: dict[str, str] | None = None, **settings: object) -> str:
    """JSON text: enough to reproduce a view (model, layer, class, methods, settings) and its numbers;
    ``model`` a name or :func:`model_identity`, ``image`` a description or {"source", "sha256"}."""
    record = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model, "architecture": architecture, "layer": layer,
        "target_class": {"index": target_class, "name": class_name},
        "methods": methods, "metrics": metrics, "image": image, "device": device, "settings": settings,
        "versions": versions(**(extra_versions or {})),
    }
    return json.dumps(record, indent=2, default=float)
