"""Device choice: CUDA when present, CPU otherwise, with clear errors for bad requests."""
from __future__ import annotations

import torch

from .errors import CamlabError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return a usable ``torch.device``; ``None`` picks ``cuda`` when available, else ``cpu``."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise CamlabError(f"{device!r} is not a device; use 'cpu', 'cuda' or 'cuda:N'.") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise CamlabError(
                f"CUDA was requested ({device!r}) but this machine has no usable CUDA GPU; use device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise CamlabError(
                f"{device!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    elif resolved.type != "cpu":
        raise CamlabError(f"device {device!r} is not supported; use 'cpu' or 'cuda'.")
    return resolved


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter or buffer (CPU for a parameterless model)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
