"""Models for camlab: torchvision classifiers by name, state_dict files, and what the UI shows about them.

camlab's models take images in [0, 1] and normalise inside (torchvision models get a
normalising pre-hook), so walls, fills and faithfulness masks all live in plain pixel space.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import nn

from .errors import CamlabError

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

ModuleT = TypeVar("ModuleT", bound=nn.Module)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_MODELS = ("vgg16", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny",
                      "vit_b_16", "swin_t")
# Where each architecture's CAM is read by default: the last spatial features (for ViT, the input
# of the last block's attention, as pytorch-grad-cam's ViT recipe; for Swin, its final norm).
DEFAULT_LAYERS = {
    "vgg16": "features.29",
    "resnet18": "layer4", "resnet50": "layer4", "mobilenet_v3_large": "features",
    "efficientnet_b0": "features", "convnext_tiny": "features",
    "vit_b_16": "encoder.layers.encoder_layer_11.ln_1", "swin_t": "norm",
}
# How those layers' outputs read as maps (camlab.reshape): ViT gives tokens, Swin channels-last maps.
RESHAPES = {"vit_b_16": "tokens", "swin_t": "nhwc"}


class Normalize(nn.Module):
    """(x - mean) / std per channel, as the model's first step."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised images."""
        return (x - self.mean) / self.std


@dataclass
class LoadedModel:
    """A model ready for camlab (eval mode, on its device), with what the UI needs to show about it:
    its class names, the layer CAMs read by default, its model card and input size."""

    model: nn.Module
    name: str
    architecture: str
    class_names: list[str]
    default_layer: str | None
    card: dict = field(default_factory=dict)
    input_size: int = 224
    reshape: str | None = None  # how the model's layers read as maps (camlab.reshape)


FormatLoader = Callable[[Path, dict, "str | torch.device"], LoadedModel]
# Reads a bare state_dict of a layout it knows (by its keys and shapes), or returns None.
StateDictLayout = Callable[[Path, "dict[str, torch.Tensor]", "str | torch.device"], "LoadedModel | None"]


def model_card(path: Path) -> dict:
    """The JSON model card next to a checkpoint (``<name>.json``), or an empty dict."""
    card = path.with_suffix(".json")
    return json.loads(card.read_text()) if card.exists() else {}


# A zip checkpoint's members may declare at most this much unpacked data: torch.save stores members
# uncompressed, so a real checkpoint's members add up to its file size; a declared size far beyond
# it is a zip bomb, refused before anything is unpacked.
MAX_UNPACKED_BYTES = 2 * 2**30


def archive_kind(path: Path) -> str:
    """What ``path`` holds, read from its zip directory only (nothing is unpacked or executed):
    ``"torchscript"`` (compiled code), ``"zip"`` (torch.save's format) or ``"legacy"`` (not a zip:
    PyTorch's pre-1.6 format, or not a checkpoint at all). Damaged archives and archives that
    declare more than :data:`MAX_UNPACKED_BYTES` unpacked are a CamlabError."""
    if not zipfile.is_zipfile(path):
        return "legacy"
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CamlabError(f"{path.name} is a damaged zip archive ({exc})") from exc
    names = [member.filename.replace("\\", "/") for member in members]
    if any(name.endswith("constants.pkl") or "/code/" in f"/{name}" or name.endswith(".py") for name in names):
        return "torchscript"
    declared = sum(member.file_size for member in members)
    if declared > MAX_UNPACKED_BYTES:
        raise CamlabError(f"{path.name} declares {declared / 2**20:,.0f} MiB of unpacked data; the limit is "
                          f"{MAX_UNPACKED_BYTES / 2**20:,.0f} MiB")
    return "zip"


TORCHSCRIPT_REFUSED = ("is a TorchScript archive. Loading one runs the code inside it (it can read and write files "
                       "on this machine), so camlab does not load it unless you say you trust the file "
                       "(load_model_file(path, trusted=True)); the app never does. Share the weights instead: "
                       "torch.save(model.state_dict(), 'resnet18_mine.pt') for a torchvision architecture, or "
                       "camlab.study.save_checkpoint for a camlab model")


MAX_CLASS_NAME_CHARS = 200


def check_class_names(names: list | tuple, source: str) -> None:
    """Class names a file gives: strings of at most :data:`MAX_CLASS_NAME_CHARS` printable characters
    (they label every page; the app still escapes them before they reach Markdown)."""
    for name in names:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CLASS_NAME_CHARS or not name.isprintable():
            shown = repr(name)[:60]
            raise CamlabError(f"{source} has a class name that is not 1 to {MAX_CLASS_NAME_CHARS} printable characters "
                              f"({shown})")


MAX_PARAMETERS = 600_000_000  # far above any classifier camlab explains on one machine


def fitted_model(build: Callable[[], ModuleT], state: dict, name: str) -> ModuleT:
    """``build()`` with ``state`` loaded, after checking on the ``meta`` device (no memory) that
    every tensor's name and shape fit and every weight is finite, so a file that does not fit never
    allocates the model its config describes."""
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CamlabError(f"{name} does not hold a state_dict of tensors")
    with torch.device("meta"):
        skeleton = build()
    size = sum(p.numel() for p in skeleton.parameters())
    if size > MAX_PARAMETERS:
        raise CamlabError(f"{name} describes a model of {size:,} parameters; the limit is {MAX_PARAMETERS:,}")
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"missing {k}" for k in expected if k not in given][:2]
    problems += [f"unexpected {k}" for k in given if k not in expected][:2]
    problems += [f"{k} is {given[k]} in the file but {expected[k]} in the architecture"
                 for k in expected if k in given and given[k] != expected[k]][:2]
    if problems:
        raise CamlabError(f"{name} does not fit the architecture: {'; '.join(problems)}")
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CamlabError(f"{name} holds NaN or infinite weights ({key}); such a model cannot be explained")
    model = build()
    model.load_state_dict(state)
    return model


def load_model_file(path: str | Path, device: str | torch.device = "cpu",
                    formats: Mapping[str, FormatLoader] | None = None, trusted: bool = False,
                    architecture: str | None = None, layouts: Sequence[StateDictLayout] = ()) -> LoadedModel:
    """A model file: a state_dict for a torchvision ``architecture`` (by default the one named in
    the file name, e.g. ``resnet18_custom.pt``), or a dict whose ``"format"`` field names one of ``formats`` (the paper
    study adds its checkpoint format this way), or a bare state_dict one of ``layouts`` recognises by its
    keys (the paper study reads the authors' published VGG16 weights this way).

    Nothing in an untrusted file can run code: its content is inspected before ``torch.load`` sees
    it, TorchScript archives are refused (by content, whatever their name), and tensors are read
    with ``weights_only=True``. PyTorch's pre-1.6 format (not a zip) is refused too: it declares
    tensor sizes that are allocated before they are read, so a tiny file could ask for gigabytes.
    ``trusted=True`` is for files you would run as code: TorchScript loads with ``torch.jit.load``
    (it cannot be explained, its layers take no hooks) and the legacy format is read.
    """
    path = Path(path)
    if not path.is_file():
        raise CamlabError(f"no checkpoint at {path}")
    kind = archive_kind(path)
    if kind == "torchscript":
        if not trusted:
            raise CamlabError(f"{path.name} {TORCHSCRIPT_REFUSED}")
        try:
            model = torch.jit.load(str(path), map_location=device)
        except (RuntimeError, ValueError, OSError, KeyError, AttributeError) as exc:  # a broken or foreign archive
            raise CamlabError(f"{path.name} looks like TorchScript but cannot be loaded ({type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from exc
        return LoadedModel(model.eval(), path.stem, "torchscript", [], None, model_card(path))
    if kind == "legacy" and not trusted:
        raise CamlabError(f"{path.name} is not a PyTorch checkpoint in torch.save's zip format (PyTorch 1.6 or later); "
                          "if it is an older checkpoint, load it with torch.load on your own machine and save it again")
    payload = read_payload(path, device)
    if formats and isinstance(payload, dict) and payload.get("format") in formats:
        return formats[payload["format"]](path, payload, device)
    payload = unwrapped_state_dict(payload)
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        for layout in layouts if architecture is None else ():
            if (loaded := layout(path, payload, device)) is not None:
                return loaded
        if architecture is not None and architecture not in TORCHVISION_MODELS:
            raise CamlabError(f"unknown torchvision architecture {architecture!r}; choose one of "
                              f"{', '.join(TORCHVISION_MODELS)}")
        arch = architecture or next((a for a in sorted(TORCHVISION_MODELS, key=len, reverse=True) if a in path.stem),
                                    None)
        if arch is None:
            raise CamlabError(
                f"{path.name} is a bare state_dict; name its architecture ({', '.join(TORCHVISION_MODELS)}) "
                "in the file name (e.g. resnet18_mine.pt) so camlab knows what to build (camlab-audit: "
                "--model <architecture> --weights <file>)"
            )
        num_classes = _num_classes(payload, path.name)
        model = fitted_model(lambda: torchvision_model(arch, num_classes), payload, path.name)
        names = imagenet_names(arch) if num_classes == 1000 else [str(i) for i in range(num_classes)]
        return LoadedModel(with_input_normalisation(model).to(device).eval(), path.stem, arch, names,
                           DEFAULT_LAYERS[arch], reshape=RESHAPES.get(arch))
    raise CamlabError(f"{path.name} holds a {type(payload).__name__}, not a state_dict or camlab checkpoint")


def read_payload(path: Path, device: str | torch.device) -> object:
    """``torch.load`` with ``weights_only`` (no code runs), errors turned into a clear message."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for foreign files
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch colours its messages for a terminal
        pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
        if pickled:
            raise CamlabError(f"{path.name} holds a whole pickled model ({pickled.group(1)}), not its weights: unpickling "
                              "it would run code from the file, so camlab does not. Save the weights instead, "
                              "torch.save(model.state_dict(), 'resnet18_mine.pt'), naming the file after a torchvision "
                              "architecture, or use camlab.study.save_checkpoint for a camlab model") from exc
        first = message.strip().splitlines()[0] if message.strip() else ""
        raise CamlabError(f"{path.name} is not a PyTorch checkpoint ({type(exc).__name__}: {first})") from exc


# Where training scripts commonly put the weights inside a checkpoint dict.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")


def unwrapped_state_dict(payload: object) -> object:
    """The state_dict inside common checkpoint layouts: ``{"state_dict": …}``, ``{"model": …}`` (and
    the other :data:`STATE_DICT_KEYS`), with DataParallel's ``module.`` prefix removed; anything
    else is returned as it is."""
    if isinstance(payload, dict) and not all(isinstance(v, torch.Tensor) for v in payload.values()):
        inner = next((payload[k] for k in STATE_DICT_KEYS if isinstance(payload.get(k), dict)), None)
        if inner is not None:
            payload = inner
    if isinstance(payload, dict) and payload and all(isinstance(k, str) and k.startswith("module.") for k in payload):
        payload = {k[len("module."):]: v for k, v in payload.items()}
    return payload


def _num_classes(state: dict, name: str) -> int:
    weights = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not weights:
        raise CamlabError(f"{name} has no 2-D weight, so it holds no classifier head")
    return weights[-1].shape[0]


def imagenet_names(arch: str) -> list[str]:
    """ImageNet's 1000 class names from the metadata torchvision ships with ``arch``'s weights
    (no download): "goldfish", not "1"."""
    return list(default_weights(arch).meta["categories"])


def torchvision_model(arch: str, num_classes: int = 1000) -> nn.Module:
    """A torchvision architecture with random weights."""
    import torchvision

    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def default_weights(arch: str) -> WeightsEnum:
    """Torchvision's default ImageNet weights of ``arch`` (their URL, categories and transforms)."""
    import torchvision

    return torchvision.models.get_model_weights(arch)["DEFAULT"]


def with_input_normalisation(model: nn.Module) -> nn.Module:
    """Torchvision models expect normalised input; a pre-hook keeps their layer names intact."""
    model.input_normalize = Normalize()
    # Looked up on the module the hook runs on, so a deep copy of the model uses its own copy.
    model.register_forward_pre_hook(lambda module, args: (module.get_submodule("input_normalize")(args[0]), *args[1:]))
    return model


def torchvision_weights_path(arch: str) -> Path:
    """Where torchvision caches the default ImageNet weights for ``arch`` (``$TORCH_HOME/hub/checkpoints``)."""
    weights = default_weights(arch)
    filename = os.path.basename(weights.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def expected_hash_prefix(weights_file: Path) -> str:
    """The SHA-256 prefix torchvision puts at the end of each weights file's name (``resnet18-f37072fd.pth``)."""
    return weights_file.stem.rsplit("-", 1)[-1]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _offline_message(arch: str, target: Path, url: str, reason: str) -> str:
    return (f"{arch}'s ImageNet weights are not in the torch cache and could not be downloaded ({reason}). "
            f"On a machine with internet, fetch the file with:  curl -L --create-dirs -o {target} {url}  "
            "(or load the model once there, then copy the file), and load again.")


def download_torchvision_weights(arch: str, on_progress: Callable[[int, int], None] | None = None,
                                 timeout: float = 20.0) -> Path:
    """Download ``arch``'s default ImageNet weights into the torch cache, reporting
    ``on_progress(bytes done, bytes total)``; the file's SHA-256 must start with the hash in its name.
    Offline or interrupted: a CamlabError with the path and the one command that fetches the file."""
    import hashlib
    import urllib.error
    import urllib.request


    url = default_weights(arch).url
    target = torchvision_weights_path(arch)
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            total, done = int(response.headers.get("Content-Length") or 0), 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        raise CamlabError(_offline_message(arch, target, url, str(getattr(exc, "reason", exc)))) from exc
    expected = expected_hash_prefix(target)
    if not digest.hexdigest().startswith(expected):
        partial.unlink(missing_ok=True)
        raise CamlabError(f"the download of {url} does not match its checksum ({expected}); try again")
    partial.replace(target)
    return target


RANDOM_WEIGHTS_SEED = 0
# Torchvision starts these heads at exactly zero (for fine-tuning): a random model with one has a constant
# output, zero gradients and all-zero gradient maps. Random weights draw them as ViT's other linear layers.
ZERO_INITIALISED_HEADS = {"vit_b_16": "heads.head"}


def random_torchvision(arch: str, seed: int = RANDOM_WEIGHTS_SEED, **options: object) -> nn.Module:
    """``arch`` with random weights drawn from ``seed`` (the caller's RNG untouched); a head torchvision
    starts at zero is drawn from N(0, 0.02²) instead, so the output depends on the input. ``options``
    go to torchvision's builder (``image_size=`` for a ViT)."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(torchvision.models, arch)(weights=None, **options)
        if arch in ZERO_INITIALISED_HEADS:
            head = model.get_submodule(ZERO_INITIALISED_HEADS[arch])
            nn.init.normal_(head.weight, std=0.02)
    return model


def load_torchvision(arch: str, device: str | torch.device = "cpu", pretrained: bool = True,
                     allow_download: bool = True, on_progress: Callable[[int, int], None] | None = None) -> LoadedModel:
    """A torchvision classifier by name. ``pretrained``: ImageNet weights from the torch cache,
    downloaded there first when missing and ``allow_download`` (with ``on_progress`` reports, or a
    progress bar on the terminal); offline, a clear error with the path and the command that fetches
    them. ``pretrained=False`` gives random weights (seeded: the same model on every load), for tests and
    demos: its maps mean nothing."""
    if arch not in TORCHVISION_MODELS:
        raise CamlabError(f"unknown torchvision model {arch!r}; choose one of {', '.join(TORCHVISION_MODELS)}")
    model = random_torchvision(arch)  # the same random weights on every load
    class_names = imagenet_names(arch)  # the head's classes, trained or not
    card = {"weights": f"random (untrained, seed {RANDOM_WEIGHTS_SEED}): its maps mean nothing"}
    if pretrained:
        weights = default_weights(arch)
        target = torchvision_weights_path(arch)
        if not target.exists():
            if not allow_download:
                raise CamlabError(_offline_message(arch, target, weights.url, "downloads are off"))
            download_torchvision_weights(arch, on_progress or _terminal_progress(arch))  # checks the hash as it reads
        elif not file_sha256(target).startswith(expected := expected_hash_prefix(target)):
            raise CamlabError(f"the cached weights file {target} does not match its checksum ({expected}): it is damaged "
                              "or not torchvision's; delete it and load again to download a fresh copy")
        try:
            model.load_state_dict(weights.get_state_dict(progress=False))  # torchvision's own path, from the cache
        except Exception as exc:  # torch.load reports a damaged file through many exception types
            raise CamlabError(f"the cached weights file {target} is damaged ({type(exc).__name__}); delete it and "
                              "load again to download a fresh copy") from exc
        card = {"weights": f"ImageNet ({weights.name}), {target.name}"}
    return LoadedModel(with_input_normalisation(model).to(device).eval(), arch, arch, class_names,
                       DEFAULT_LAYERS[arch], card, reshape=RESHAPES.get(arch))


def _terminal_progress(arch: str) -> Callable[[int, int], None]:
    from tqdm import tqdm

    bar = tqdm(desc=f"{arch} weights", unit="B", unit_scale=True)

    def update(done: int, total: int) -> None:
        bar.total = total or None
        bar.update(done - bar.n)

    return update
