"""Streamlit-free helpers the app pages share: model sources, a per-model result cache, readouts.

Everything here is plain Python and tensors so it can be tested without a browser; the pages only
add widgets and layout.
"""
from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .engine import CAMEngine, CAMMap, Explanation
from .errors import CamlabError
from .layers import resolve_layer, spatial_layers
from .metrics import confidence_metrics, insertion_deletion, leakage
from .models import LoadedModel, load_checkpoint, load_torchvision
from .registry import get_method
from .walls import unseen_region

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ts")
MAX_CHECKPOINT_BYTES = 600 * 1024 * 1024


def digest(tensor: torch.Tensor | None) -> str:
    """A short content hash, the cache key for an image or a wall."""
    if tensor is None:
        return "-"
    return hashlib.sha1(tensor.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


class ResultCache:
    """Least-recently-used results per (image, model variant, layer, target): switching views or
    adding a method reuses what was computed; only missing methods run."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._entries: OrderedDict[tuple, dict] = OrderedDict()

    def slot(self, key: tuple) -> dict:
        entry = self._entries.pop(key, None)
        if entry is None:
            entry = {"maps": {}, "seconds": {}, "readouts": {}}
        self._entries[key] = entry
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class ModelEntry:
    loaded: LoadedModel
    dead_zone: torch.Tensor  # (H, W) bool, computed; all False for unwalled models
    lock: threading.Lock  # hooks mutate the shared model: one explanation at a time
    key: str
    layers: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # spatial layers, dry run
    cache: ResultCache = field(default_factory=ResultCache)


def shipped_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.pt"))


def model_entry(loaded: LoadedModel, key: str, device: str | torch.device) -> ModelEntry:
    """Wrap a loaded model for the app: dead zone and layer list computed once, an empty cache."""
    size = loaded.input_size
    model = loaded.model.to(device)
    blank = torch.zeros(1, 3, size, size, device=device)
    try:
        layers = spatial_layers(model, blank)
        zone = unseen_region(model, (3, size, size)).to(device)
    except RuntimeError as exc:  # shape and dtype mismatches inside the model's own forward
        raise CamlabError(f"{loaded.name} does not run on a (1, 3, {size}, {size}) image: {exc}") from exc
    if not layers:
        raise CamlabError(f"{loaded.name} has no layer with a spatial (C, H, W) output, so no CAM applies")
    # The first backward pays one-off kernel set-up (~0.6 s on CPU); pay it while loading.
    CAMEngine(model, loaded.default_layer or layers[-1][0]).explain(blank, ["gradcam"])
    return ModelEntry(loaded, zone, threading.Lock(), key, layers)


def open_model(name_or_path: str, device: str | torch.device) -> ModelEntry:
    """A shipped model by name (``masked_vgg``) or a checkpoint file by path."""
    path = Path(name_or_path)
    return model_entry(load_checkpoint(path if path.suffix else MODELS_DIR / f"{name_or_path}.pt", device),
                  str(name_or_path), device)


def open_torchvision(arch: str, device: str | torch.device, pretrained: bool = True) -> ModelEntry:
    """A torchvision classifier; ImageNet weights only from the local cache (never downloaded)."""
    return model_entry(load_torchvision(arch, device, pretrained=pretrained), f"torchvision:{arch}:{pretrained}", device)


def open_uploaded(data: bytes, filename: str, device: str | torch.device) -> ModelEntry:
    """A checkpoint uploaded as bytes; the file name matters (it names a state_dict's architecture)."""
    name = Path(filename).name
    if Path(name).suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise CamlabError(f"{name} is not a checkpoint; upload a {', '.join(CHECKPOINT_SUFFIXES)} file")
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CamlabError(f"{name} is {len(data) / 2**20:.0f} MiB; the limit is {MAX_CHECKPOINT_BYTES // 2**20} MiB")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        loaded = load_checkpoint(path, device)
    return model_entry(loaded, f"upload:{hashlib.sha1(data).hexdigest()[:16]}", device)


def check_layer(entry: ModelEntry, layer: str) -> str:
    """The layer name if the model has it and it gives a spatial map; else a clear error."""
    name, _ = resolve_layer(entry.loaded.model, layer)  # unknown names raise with suggestions
    if name not in {n for n, _ in entry.layers}:
        raise CamlabError(f"layer {name!r} does not output a spatial (C, H, W) map once per forward; "
                          f"pick one of the listed layers")
    return name


def top_classes(logits: torch.Tensor, class_names: list[str], k: int = 5) -> list[tuple[int, str, float]]:
    """(index, name, probability) of the k most probable classes of one image's logits."""
    probabilities = logits.softmax(-1).flatten()
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [(int(i), class_names[int(i)], float(p)) for p, i in zip(values.tolist(), indices.tolist())]


def _view_key(entry: ModelEntry, image: torch.Tensor, layer: str | None, target: int | None,
              variant: str = "") -> tuple:
    return digest(image), variant, layer or entry.loaded.default_layer, target


def predict(entry: ModelEntry, image: torch.Tensor) -> torch.Tensor:
    """Logits (classes,) for one image, cached: the class picker needs them before any map."""
    with entry.lock:
        slot = entry.cache.slot((digest(image), "logits"))
        if "logits" not in slot:
            with torch.no_grad():
                slot["logits"] = entry.loaded.model(image[None])[0]
        return slot["logits"]


def cached_methods(entry: ModelEntry, image: torch.Tensor, layer: str | None = None,
                   target: int | None = None) -> set[str]:
    """Methods already computed for this view (the UI computes slow ones only on request)."""
    with entry.lock:
        return set(entry.cache.slot(_view_key(entry, image, layer, target))["maps"])


def explain_cached(entry: ModelEntry, image: torch.Tensor, methods: list[str], layer: str | None = None,
                   target: int | None = None, model: torch.nn.Module | None = None,
                   variant: str = "") -> Explanation:
    """Explain one image (3, H, W), computing only the methods not cached for this
    (image, variant, layer, target); ``variant`` names a wrapped ``model`` (e.g. a blinded one).
    ``timings[method]`` is the method's own time plus the shared pass of the call that computed it."""
    for method in methods:
        get_method(method)  # unknown names fail before any work
    key = _view_key(entry, image, layer, target, variant)
    layer = key[2]
    model = model or entry.loaded.model
    hooked_layer = f"model.{layer}" if variant else layer  # wrappers keep the model as ``.model``
    with entry.lock:
        slot = entry.cache.slot(key)
        missing = [m for m in methods if m not in slot["maps"]]
        if missing or "logits" not in slot:
            result = CAMEngine(model, hooked_layer).explain(image[None], missing or methods[:1], target)
            slot.update(logits=result.logits, classes=result.classes)
            for method in missing:
                slot["maps"][method] = result[method]
                slot["seconds"][method] = result[method].seconds + result.shared_seconds
        maps: dict[str, CAMMap] = {m: slot["maps"][m] for m in methods}
        return Explanation(maps=maps, logits=slot["logits"], classes=slot["classes"], layer=layer,
                           shared_seconds=0.0, timings={m: slot["seconds"][m] for m in methods})


def faithfulness(model: torch.nn.Module, image: torch.Tensor, maps: dict[str, torch.Tensor], target: int,
                 steps: int = 16) -> dict[str, dict]:
    """Per method: Average Drop / Increase in Confidence / Average Gain for this image, insertion
    and deletion AUC and curves. All methods' maps go through the model as one batch."""
    names = list(maps)
    stacked = torch.stack([maps[n] for n in names])
    images = image[None].expand(len(names), -1, -1, -1)
    classes = torch.full((len(names),), target, dtype=torch.long, device=image.device)
    confidence = confidence_metrics(model, images, stacked, classes)
    curves = insertion_deletion(model, images, stacked, classes, steps)
    out = {}
    for i, name in enumerate(names):
        row = {k: float(confidence[k][i]) for k in ("average_drop", "increase_in_confidence", "average_gain")}
        row.update({k: float(curves[k][i]) for k in ("insertion_auc", "deletion_auc")})
        row.update({k: curves[k][i].tolist() for k in ("insertion_curve", "deletion_curve")})
        out[name] = row
    return out


def readouts_cached(entry: ModelEntry, image: torch.Tensor, result: Explanation, target: int | None = None,
                    wall: torch.Tensor | None = None, steps: int = 16, layer: str | None = None) -> dict[str, dict]:
    """:func:`faithfulness` for the explained class plus leakage inside ``wall`` (when it has
    pixels), cached beside the maps; ``image``, ``target`` and ``layer`` as given to
    :func:`explain_cached` for ``result``."""
    explained_class = int(result.classes[0])
    with entry.lock:
        readouts = entry.cache.slot(_view_key(entry, image, layer, target))["readouts"]
        ask = (steps, digest(wall))
        missing = {m: result[m].display[0] for m in result if (m, *ask) not in readouts}
        if missing:
            walled = leakage_rows(result, wall) if wall is not None and wall.any() else {}
            for method, row in faithfulness(entry.loaded.model, image, missing, explained_class, steps).items():
                readouts[(method, *ask)] = {**row, **walled.get(method, {})}
        return {m: readouts[(m, *ask)] for m in result}


def gradient_agreement(result: Explanation) -> float:
    """1 - cosine similarity of the vanilla and guided-backprop input gradients (the quantity the
    guided-gradient regulariser lowers); needs both methods in ``result``."""
    from .train import gradient_distance

    return float(gradient_distance(result["gradient"].raw, result["guided_backprop"].raw))


def leakage_rows(result: Explanation, wall: torch.Tensor) -> dict[str, dict[str, float]]:
    return {m: {k: float(v[0]) for k, v in leakage(cam.display, wall).items()} for m, cam in result.maps.items()}
