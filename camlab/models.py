"""Models: the paper's walled VGG and its unwalled twin, torchvision classifiers, checkpoints.

All camlab models take images in [0, 1] and normalise inside, so walls, fills and faithfulness
masks all live in plain pixel space.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import CamlabError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHECKPOINT_FORMAT = "camlab-checkpoint-v1"
# VGG16 configuration "D" without its last max-pool; the last conv is the paper's 512 -> 256.
_VGG16_NO_LAST_POOL = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 256)


class Normalize(nn.Module):
    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@dataclass(frozen=True)
class WallVGGConfig:
    num_classes: int = 8
    width: float = 1.0  # channel multiplier; the shipped CPU-trained models use 1/8
    masked_rows: int = 9  # bottom rows of the last feature map the first dense layer ignores
    input_size: int = 224
    hidden: int = 4096
    dropout: float = 0.5
    # Batch norm after each conv: the paper's VGG has none, but a small VGG trained from scratch on
    # a CPU does not start learning without it. In eval mode it is a per-channel affine map, so the
    # wall is unaffected (``unseen_region`` proves it for every shipped model).
    batch_norm: bool = False

    @property
    def feature_size(self) -> int:
        return self.input_size // 16

    def channels(self, base: int) -> int:
        return max(1, round(base * self.width))


class WallVGG(nn.Module):
    """The VGG-like model of "CAM-based methods can see through walls" (ECML PKDD 2024).

    ``features`` are VGG16's convolutions without the last max-pool, the last conv mapping to 256
    (times ``width``) channels; at 224x224 they output 14x14. ``classifier[0]`` reads the
    flattened map, and its weights for the bottom ``masked_rows`` feature rows are held at zero
    (:meth:`apply_wall` after every optimiser step), so the logits cannot depend on them.
    ``masked_rows=0`` gives the unwalled twin. Without batch norm, layer names match torchvision's
    VGG16 up to ``features.29`` (the last ReLU); :attr:`default_layer` names the last ReLU either way.
    """

    def __init__(self, config: WallVGGConfig = WallVGGConfig()):
        super().__init__()
        if not 0 <= config.masked_rows < config.feature_size:
            raise CamlabError(f"masked_rows must lie in [0, {config.feature_size - 1}], got {config.masked_rows}")
        self.config = config
        self.normalize = Normalize()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_NO_LAST_POOL:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                out = config.channels(item)
                layers.append(nn.Conv2d(channels, out, 3, padding=1))
                if config.batch_norm:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU(inplace=True))
                channels = out
        self.features = nn.Sequential(*layers)
        side = config.feature_size
        hidden = config.channels(config.hidden)
        self.classifier = nn.Sequential(
            nn.Linear(channels * side * side, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
            nn.Linear(hidden, config.num_classes),
        )
        row_mask = torch.ones(channels, side, side)
        if config.masked_rows:
            row_mask[:, side - config.masked_rows :, :] = 0
        self.register_buffer("wall_mask", row_mask.flatten()[None, :], persistent=False)
        self._init_weights()
        self.apply_wall()

    def _init_weights(self) -> None:
        # Dense layers keep PyTorch's default init: torchvision's N(0, 0.01) stalls a small VGG
        # trained from scratch without batch norm.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    @property
    def default_layer(self) -> str:
        return f"features.{len(self.features) - 1}"

    @torch.no_grad()
    def apply_wall(self) -> None:
        self.classifier[0].weight.mul_(self.wall_mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(self.normalize(x)), 1))


def masked_vgg(num_classes: int = 8, width: float = 1.0, masked_rows: int = 9, **kwargs) -> WallVGG:
    return WallVGG(WallVGGConfig(num_classes=num_classes, width=width, masked_rows=masked_rows, **kwargs))


def baseline_vgg(num_classes: int = 8, width: float = 1.0, **kwargs) -> WallVGG:
    return WallVGG(WallVGGConfig(num_classes=num_classes, width=width, masked_rows=0, **kwargs))


ARCHITECTURES = {"masked_vgg": masked_vgg, "baseline_vgg": baseline_vgg}
TORCHVISION_MODELS = ("vgg16", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny")
# Where each architecture's CAM is read by default.
DEFAULT_LAYERS = {
    "vgg16": "features.29",
    "resnet18": "layer4", "resnet50": "layer4", "mobilenet_v3_large": "features",
    "efficientnet_b0": "features", "convnext_tiny": "features",
}


@dataclass
class LoadedModel:
    """A model ready for camlab, with what the UI needs to show about it."""

    model: nn.Module
    name: str
    architecture: str
    class_names: list[str]
    default_layer: str | None
    card: dict = field(default_factory=dict)
    input_size: int = 224


def save_checkpoint(path: str | Path, model: WallVGG, architecture: str, class_names, extra: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": CHECKPOINT_FORMAT, "architecture": architecture, "config": asdict(model.config),
        "class_names": list(class_names), "state_dict": model.state_dict(), **(extra or {}),
    }, path)
    return path


def _card_for(path: Path) -> dict:
    card = path.with_suffix(".json")
    return json.loads(card.read_text()) if card.exists() else {}


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a camlab checkpoint, a TorchScript file, or a state_dict for a torchvision architecture
    named in the file name (e.g. ``resnet18_custom.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise CamlabError(f"no checkpoint at {path}")
    if _is_torchscript(path):
        return _load_torchscript(path, device)
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and runtime errors for foreign files
        raise CamlabError(f"{path.name} is not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        return _load_camlab(path, payload, device)
    if isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        arch = next((a for a in sorted(TORCHVISION_MODELS, key=len, reverse=True) if a in path.stem), None)
        if arch is None:
            raise CamlabError(
                f"{path.name} is a bare state_dict; name the file after its architecture "
                f"({', '.join(TORCHVISION_MODELS)}) so camlab knows what to build"
            )
        num_classes = _num_classes(payload)
        model = _torchvision_model(arch, num_classes)
        _load_state(model, payload, path.name)
        return LoadedModel(_with_imagenet_normalisation(model).to(device).eval(), path.stem, arch,
                           [str(i) for i in range(num_classes)], DEFAULT_LAYERS[arch])
    raise CamlabError(f"{path.name} holds a {type(payload).__name__}, not a state_dict or camlab checkpoint")


def _num_classes(state: dict) -> int:
    last_weight = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2][-1]
    return last_weight.shape[0]


def _load_state(model: nn.Module, state: dict, name: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).split("\n")[1:3]
        raise CamlabError(f"{name} does not fit the architecture: {' '.join(s.strip() for s in first)}") from exc


def _load_camlab(path: Path, payload: dict, device) -> LoadedModel:
    arch = payload.get("architecture")
    if arch not in ARCHITECTURES:
        raise CamlabError(f"{path.name}: unknown architecture {arch!r}")
    try:
        config = WallVGGConfig(**payload["config"])
    except TypeError as exc:
        raise CamlabError(f"{path.name}: bad model config ({exc})") from exc
    model = WallVGG(config)
    _load_state(model, payload["state_dict"], path.name)
    model.apply_wall()
    return LoadedModel(model.to(device).eval(), path.stem, arch, list(payload["class_names"]),
                       model.default_layer, _card_for(path), config.input_size)


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files holding compiled code next to the tensors."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def _load_torchscript(path: Path, device) -> LoadedModel:
    model = torch.jit.load(str(path), map_location=device)
    return LoadedModel(model.eval(), path.stem, "torchscript", [], None, _card_for(path))


def _torchvision_model(arch: str, num_classes: int = 1000) -> nn.Module:
    import torchvision

    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def _with_imagenet_normalisation(model: nn.Module) -> nn.Module:
    """Torchvision models expect normalised input; a pre-hook keeps their layer names intact."""
    model.input_normalize = Normalize()
    model.register_forward_pre_hook(lambda module, args: (module.input_normalize(args[0]), *args[1:]))
    return model


def torchvision_weights_path(arch: str) -> Path:
    """Where torchvision caches the default ImageNet weights for ``arch``."""
    import torchvision

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    filename = os.path.basename(weights.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_torchvision(arch: str, device: str | torch.device = "cpu", pretrained: bool = True,
                     allow_download: bool = False) -> LoadedModel:
    """A torchvision classifier by name, with ImageNet weights from the local torch cache.

    Downloads only when ``allow_download`` is set; offline, a missing file is a clear error
    that says where to put it. ``pretrained=False`` gives random weights (for tests and demos).
    """
    import torchvision

    if arch not in TORCHVISION_MODELS:
        raise CamlabError(f"unknown torchvision model {arch!r}; choose one of {', '.join(TORCHVISION_MODELS)}")
    model = _torchvision_model(arch)
    class_names = [str(i) for i in range(1000)]
    if pretrained:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        class_names = list(weights.meta["categories"])
        target = torchvision_weights_path(arch)
        if target.exists():
            model.load_state_dict(torch.load(target, map_location="cpu", weights_only=True))
        elif allow_download:
            try:
                model.load_state_dict(weights.get_state_dict(progress=False))
            except Exception as exc:  # network errors come in many types
                raise CamlabError(f"could not download {arch} weights ({exc}); put the file at {target}") from exc
        else:
            raise CamlabError(f"{arch} weights are not available offline; put the file at {target}")
    return LoadedModel(_with_imagenet_normalisation(model).to(device).eval(), arch, arch, class_names,
                       DEFAULT_LAYERS[arch])
