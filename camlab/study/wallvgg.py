"""The paper's walled VGG and its unwalled twin, and camlab's checkpoint format for them (and for the walled
ResNet of :mod:`camlab.study.wallresnet` and the walled ViT of :mod:`camlab.study.wallvit`)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import finite_number, whole_number
from ..errors import CamlabError
from ..models import LoadedModel, Normalize, check_class_names, fitted_model, imagenet_names, load_model_file, model_card
from ..resources import models_dir
from .wallresnet import WallResNet, WallResNetConfig, baseline_resnet, masked_resnet
from .wallvit import WallViT, WallViTConfig, baseline_vit, masked_vit

CHECKPOINT_FORMAT = "camlab-checkpoint-v1"
# VGG16 configuration "D" without its last max-pool; the last conv is the paper's 512 -> 256.
_VGG16_NO_LAST_POOL = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 256)


@dataclass(frozen=True)
class WallVGGConfig:
    """The walled VGG's shape: classes, width multiplier, walled feature rows, input size, head."""

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

    def __post_init__(self) -> None:
        whole_number("num_classes", self.num_classes, 1, 100_000)
        finite_number("width", self.width, 1 / 64, 4)
        whole_number("hidden", self.hidden, 1, 65_536)
        finite_number("dropout", self.dropout, 0, 0.99)
        size = whole_number("input_size", self.input_size, 32, 1024)
        if size % 16:
            raise CamlabError(f"input_size must be a multiple of 16 (four max-pools), got {size}")
        whole_number("masked_rows", self.masked_rows, 0, size // 16 - 1)
        if not isinstance(self.batch_norm, bool):
            raise CamlabError(f"batch_norm must be true or false, got {self.batch_norm!r}")

    @property
    def feature_size(self) -> int:
        """The side of the last feature map (14 at 224x224)."""
        return self.input_size // 16

    def channels(self, base: int) -> int:
        """``base`` channels times the width multiplier (at least 1)."""
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

    wall_mask: torch.Tensor

    def __init__(self, config: WallVGGConfig = WallVGGConfig()) -> None:
        super().__init__()
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
            if isinstance(module, nn.Conv2d) and module.bias is not None:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    @property
    def default_layer(self) -> str:
        """The last feature map's ReLU, the layer CAMs read by default."""
        return f"features.{len(self.features) - 1}"

    @torch.no_grad()
    def apply_wall(self) -> None:
        """Zero the first dense layer's weights for the walled feature rows (after every optimiser step)."""
        self.first_dense.weight.mul_(self.wall_mask)

    @property
    def first_dense(self) -> nn.Linear:
        """The head's first dense layer, whose weights the wall zeroes."""
        layer = self.classifier[0]
        if not isinstance(layer, nn.Linear):
            raise CamlabError(f"the head starts with a {type(layer).__name__}, not the walled dense layer")
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of [0, 1] images."""
        return self.classifier(torch.flatten(self.features(self.normalize(x)), 1))


def masked_vgg(num_classes: int = 8, width: float = 1.0, masked_rows: int = 9, **kwargs: Any) -> WallVGG:
    """The paper's walled VGG: the bottom ``masked_rows`` feature rows unread by the head."""
    return WallVGG(WallVGGConfig(num_classes=num_classes, width=width, masked_rows=masked_rows, **kwargs))


def baseline_vgg(num_classes: int = 8, width: float = 1.0, **kwargs: Any) -> WallVGG:
    """The unwalled twin: same architecture, every feature row read."""
    return WallVGG(WallVGGConfig(num_classes=num_classes, width=width, masked_rows=0, **kwargs))


WalledNet = WallVGG | WallResNet | WallViT  # what camlab-train trains and a camlab checkpoint holds
ARCHITECTURES = {"masked_vgg": masked_vgg, "baseline_vgg": baseline_vgg,
                 "masked_resnet": masked_resnet, "baseline_resnet": baseline_resnet,
                 "masked_vit": masked_vit, "baseline_vit": baseline_vit}
# Each architecture's config and model class, as a checkpoint names them.
FAMILIES: dict[str, tuple[Callable[..., Any], Callable[[Any], WalledNet]]] = {
    "masked_vgg": (WallVGGConfig, WallVGG), "baseline_vgg": (WallVGGConfig, WallVGG),
    "masked_resnet": (WallResNetConfig, WallResNet), "baseline_resnet": (WallResNetConfig, WallResNet),
    "masked_vit": (WallViTConfig, WallViT), "baseline_vit": (WallViTConfig, WallViT)}


def save_checkpoint(path: str | Path, model: WalledNet, architecture: str, class_names: Sequence[str],
                    extra: dict | None = None) -> Path:
    """Write a camlab checkpoint: format tag, architecture, config, class names and weights."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": CHECKPOINT_FORMAT, "architecture": architecture, "config": asdict(model.config),
        "class_names": list(class_names), "state_dict": model.state_dict(), **(extra or {}),
    }, path)
    return path


def _load_camlab(path: Path, payload: dict, device: str | torch.device) -> LoadedModel:
    missing = [key for key in ("architecture", "config", "class_names", "state_dict") if key not in payload]
    if missing:
        raise CamlabError(f"{path.name} is a camlab checkpoint without {', '.join(missing)}; re-save it with "
                          "camlab.study.save_checkpoint")
    arch = payload["architecture"]
    if arch not in ARCHITECTURES:
        raise CamlabError(f"{path.name}: unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    if not isinstance(payload["config"], dict):
        raise CamlabError(f"{path.name}: the config is a {type(payload['config']).__name__}, not a dict")
    config_class, model_class = FAMILIES[arch]
    try:
        config = config_class(**payload["config"])
    except TypeError as exc:
        raise CamlabError(f"{path.name}: bad model config ({exc})") from exc
    except CamlabError as exc:
        raise CamlabError(f"{path.name}: bad model config: {exc}") from exc
    names = payload["class_names"]
    if not isinstance(names, (list, tuple)) or len(names) != config.num_classes:
        count = len(names) if isinstance(names, (list, tuple)) else type(names).__name__
        raise CamlabError(f"{path.name} names {count} classes for a model with {config.num_classes} outputs")
    check_class_names(names, path.name)
    model = fitted_model(lambda: model_class(config), payload["state_dict"], path.name)
    model.apply_wall()
    return LoadedModel(model.to(device).eval(), path.stem, arch, [str(name) for name in names],
                       model.default_layer, model_card(path), config.input_size)


# The authors' published weights (github.com/MagamedT/cam-can-see-through-walls, params_vgg16_masked.pt and
# params_vgg16_baseline.pt, ImageNet) are a bare state_dict of one nn.Sequential: VGG16's features without
# the last max-pool ("0." to "28.", the last conv 512 -> 256), a Flatten ("30") and VGG's classifier ("31.").
PAPER_CLASSIFIER = "31"
PAPER_SOURCE = "the paper's ImageNet VGG16 weights (github.com/MagamedT/cam-can-see-through-walls)"
PAPER_ARCHITECTURES = ("paper_masked_vgg16", "paper_baseline_vgg16")


def paper_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], WallVGGConfig] | None:
    """The authors' state_dict under :class:`WallVGG`'s names, with the config it fits (full width, no
    batch norm, ``masked_rows`` the bottom feature rows its first dense layer holds at exactly zero);
    None when ``state`` is not in their layout."""
    head = state.get(f"{PAPER_CLASSIFIER}.6.weight")
    if head is None or head.dim() != 2:
        return None
    renamed = {}
    for key, value in state.items():
        index, _, rest = key.partition(".")
        if not index.isdigit() or not rest:
            return None
        renamed[f"classifier.{rest}" if index == PAPER_CLASSIFIER else f"features.{key}"] = value
    config = WallVGGConfig(num_classes=head.shape[0])
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in WallVGG(config).state_dict().items()}
    normalize = Normalize().state_dict()  # the authors normalise with ImageNet's statistics before the model
    renamed.update({f"normalize.{k}": v for k, v in normalize.items()})
    if {k: tuple(v.shape) for k, v in renamed.items()} != expected:
        return None
    side = config.feature_size
    dense = renamed["classifier.0.weight"]
    zero_rows = (dense.view(dense.shape[0], -1, side, side) == 0).all(dim=3).all(dim=1).all(dim=0).tolist()
    walled = next((n for n in range(side) if not zero_rows[side - 1 - n]), side)
    if walled == side:
        raise CamlabError("the file has the layout of the paper's VGG16, but its first dense layer reads no feature row")
    return renamed, WallVGGConfig(num_classes=config.num_classes, masked_rows=walled)


def _load_paper(path: Path, state: dict[str, torch.Tensor], device: str | torch.device) -> LoadedModel | None:
    found = paper_state_dict(state)
    if found is None:
        return None
    renamed, config = found
    model = fitted_model(lambda: WallVGG(config), renamed, path.name)
    names = imagenet_names("vgg16") if config.num_classes == 1000 else [str(i) for i in range(config.num_classes)]
    wall = (f"its first dense layer reads the top {config.feature_size - config.masked_rows} of "
            f"{config.feature_size} feature rows" if config.masked_rows else "unwalled: every feature row is read")
    card = {"weights": f"{PAPER_SOURCE}; {wall}", **model_card(path)}
    arch = PAPER_ARCHITECTURES[0 if config.masked_rows else 1]
    return LoadedModel(model.to(device).eval(), path.stem, arch, names, model.default_layer, card, config.input_size)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", trusted: bool = False,
                    architecture: str | None = None) -> LoadedModel:
    """A camlab checkpoint, or any model file :func:`camlab.models.load_model_file` reads
    (``trusted`` and ``architecture`` as there: only for files you would run as code; the
    torchvision architecture of a bare state_dict), the authors' published VGG16 weights among them
    (:func:`paper_state_dict`: the walled one, or its unwalled twin). A bare name such as
    ``"masked_vgg"`` is a shipped model (:func:`models_dir`), from any working directory."""
    path = Path(path)
    if not path.suffix and not path.exists() and path.name == str(path):
        path = models_dir() / f"{path.name}.pt"
    return load_model_file(path, device, {CHECKPOINT_FORMAT: _load_camlab}, trusted=trusted, architecture=architecture,
                           layouts=(_load_paper,))
