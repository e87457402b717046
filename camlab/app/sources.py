"""Where the app's models come from: the repository's shipped checkpoints, torchvision, uploads."""
from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import torch

from ..errors import CamlabError
from ..models import load_torchvision
from ..resources import models_dir
from ..study.wallvgg import load_checkpoint
from .state import ModelEntry, model_entry

# TorchScript is not among them: loading an archive runs its code (camlab.models.load_model_file).
CHECKPOINT_SUFFIXES = (".pt", ".pth")
# Streamlit's own upload limit (server.maxUploadSize in .streamlit/config.toml) is the same 600 MB.
MAX_CHECKPOINT_BYTES = 600 * 1024 * 1024
MAX_FILENAME_CHARS = 100


def shipped_models() -> list[str]:
    """Names of the checkpoints in the repository's ``models/`` folder."""
    return sorted(p.stem for p in models_dir().glob("*.pt"))


def open_shipped(name_or_path: str, device: str | torch.device) -> ModelEntry:
    """A shipped model by name (``masked_vgg``) or a checkpoint file by path."""
    return model_entry(load_checkpoint(name_or_path, device), str(name_or_path), device)


def open_torchvision(arch: str, device: str | torch.device, pretrained: bool = True) -> ModelEntry:
    """A torchvision classifier; ImageNet weights from the torch cache (fetch them first with
    :func:`camlab.models.download_torchvision_weights` to show progress)."""
    return model_entry(load_torchvision(arch, device, pretrained=pretrained),
                       f"torchvision:{arch}:{pretrained}", device)


def safe_filename(filename: str) -> str:
    """An uploaded file's name as camlab uses it (to write it, name the model, find a state_dict's
    architecture): its last path part, every character outside ``A-Z a-z 0-9 . _ -`` replaced by
    ``_``, the stem cut so the whole stays within :data:`MAX_FILENAME_CHARS`."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(filename).replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name or "upload", ""
    suffix = suffix[:10]
    return stem[: MAX_FILENAME_CHARS - len(suffix) - 1] + (f".{suffix}" if suffix else "")


def open_uploaded(data: bytes, filename: str, device: str | torch.device) -> ModelEntry:
    """A checkpoint uploaded as bytes; the file name matters (it names a state_dict's architecture).
    An uploaded file is never trusted: nothing in it can run code (:func:`camlab.models.load_model_file`)."""
    name = safe_filename(filename)
    if Path(name).suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise CamlabError(f"{name} is not a checkpoint; upload a {', '.join(CHECKPOINT_SUFFIXES)} file (TorchScript "
                          "archives are not accepted: loading one runs its code)")
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CamlabError(f"{name} is {len(data) / 2**20:.0f} MiB; the limit is {MAX_CHECKPOINT_BYTES // 2**20} MiB")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        loaded = load_checkpoint(path, device, trusted=False)
    return model_entry(loaded, f"upload:{hashlib.sha1(data).hexdigest()[:16]}", device)
