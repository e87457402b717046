"""Device choice: CUDA when present, CPU otherwise, with clear errors for bad requests."""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

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


class Stopwatch:
    """Intervals timed on ``device`` without a host sync per interval: CUDA events on a GPU (the
    kernels' own time, read after one synchronisation in :meth:`seconds`), ``perf_counter`` on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._marks: list = []

    def mark(self) -> int:
        """Record a point in time (queued on the GPU's stream); returns its index."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self._marks.append(event)
        else:
            self._marks.append(time.perf_counter())
        return len(self._marks) - 1

    def seconds(self, start: int, end: int) -> float:
        """Seconds between two marks; on a GPU this waits for the later one."""
        if self.cuda:
            self._marks[end].synchronize()
            return self._marks[start].elapsed_time(self._marks[end]) / 1000
        return self._marks[end] - self._marks[start]


@contextlib.contextmanager
def launched_processes(device: str | torch.device | None = None) -> Iterator[torch.device]:
    """The device a command runs on, inside the process group of ``torch.distributed.run`` when it
    launched this process (``WORLD_SIZE`` set): one GPU per process (``LOCAL_RANK``) with NCCL, or
    gloo on the CPU; the group is destroyed on the way out, whatever happens."""
    resolved = resolve_device(device)
    if "WORLD_SIZE" not in os.environ:
        yield resolved
        return
    if resolved.type == "cuda":
        resolved = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(resolved)
    torch.distributed.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    try:
        yield resolved
    finally:
        torch.distributed.destroy_process_group()
