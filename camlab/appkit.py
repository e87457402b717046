"""Streamlit-free helpers the app pages share: which models exist, cached loading, one explanation."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .engine import CAMEngine, Explanation
from .metrics import leakage
from .models import LoadedModel, load_checkpoint
from .walls import unseen_region

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass
class ModelEntry:
    loaded: LoadedModel
    dead_zone: torch.Tensor  # (H, W) bool, computed; empty for unwalled models
    lock: threading.Lock  # hooks mutate the shared model: one explanation at a time


def shipped_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.pt"))


def open_model(name_or_path: str, device: str) -> ModelEntry:
    path = Path(name_or_path)
    loaded = load_checkpoint(path if path.suffix else MODELS_DIR / f"{name_or_path}.pt", device)
    size = loaded.input_size
    zone = unseen_region(loaded.model, (3, size, size)).to(device)
    return ModelEntry(loaded, zone, threading.Lock())


def run_methods(entry: ModelEntry, image: torch.Tensor, methods: list[str], model=None, layer=None,
                targets=None) -> Explanation:
    model = model or entry.loaded.model
    with entry.lock:
        return CAMEngine(model, layer or entry.loaded.default_layer).explain(image[None], methods, targets)


def leakage_rows(result: Explanation, wall: torch.Tensor) -> dict[str, dict[str, float]]:
    return {m: {k: float(v[0]) for k, v in leakage(cam.display, wall).items()} for m, cam in result.maps.items()}
