"""The auditor's model: a torchvision classifier by name (its ImageNet weights, random weights, or
a state_dict file), a timm model by name (``timm:resnet50``; its pretrained weights or a state_dict
file), any camlab or torchvision-state_dict checkpoint by path. Preprocessing comes with the model:
torchvision's weights declare their crop, timm's data config its crop, input size and
normalisation, a camlab checkpoint its input size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CamlabError
from ..models import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TORCHVISION_MODELS,
    LoadedModel,
    Normalize,
    default_weights,
    fitted_model,
    imagenet_names,
    load_torchvision,
    read_payload,
    unwrapped_state_dict,
)
from ..study.wallvgg import PAPER_ARCHITECTURES, load_checkpoint
from .images import Preprocessing

TIMM = "timm:"
RANDOM = ("random", "none")  # --weights for an untrained model (its maps mean nothing)


@dataclass
class AuditModel:
    """A loaded model with the preprocessing its images need and the command-line ``spec`` it came from."""

    loaded: LoadedModel
    preprocessing: Preprocessing
    spec: str


class _Normalised(nn.Module):
    """A model that takes [0, 1] images: ``normalize`` then ``net`` (the net's layer names keep
    the ``net.`` prefix)."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.normalize, self.net = Normalize(mean, std), net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


def _torchvision_crop(arch: str) -> float:
    """The crop torchvision's DEFAULT weights declare (Resize(resize) + CenterCrop(crop) = crop/resize)."""
    transform = default_weights(arch).transforms()
    return float(transform.crop_size[0]) / float(transform.resize_size[0])


def _state_dict(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    payload = unwrapped_state_dict(read_payload(path, device))
    if not isinstance(payload, dict) or not payload or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise CamlabError(f"{path.name} holds no state_dict (a dict of tensors)")
    return payload


def _timm(name: str, weights: str | None, device: str | torch.device) -> AuditModel:
    try:
        import timm
        from timm.data.config import resolve_data_config
    except ImportError as exc:  # an optional dependency
        raise CamlabError("timm models need the timm package: pip install 'camlab[timm]'") from exc
    if name not in timm.list_models():
        close = timm.list_models(f"*{name}*")[:5]
        raise CamlabError(f"timm has no model {name!r}" + (f"; close: {', '.join(close)}" if close else ""))
    if weights in RANDOM:
        net, card = timm.create_model(name, pretrained=False), "random (untrained): its maps mean nothing"
    elif weights in (None, "DEFAULT"):
        try:
            net = timm.create_model(name, pretrained=True)
        except Exception as exc:  # the hub reports offline and missing files through many types
            raise CamlabError(f"timm could not fetch {name}'s pretrained weights ({type(exc).__name__}); offline, "
                              f"save them on a machine that is online (timm.create_model({name!r}, pretrained=True) "
                              "then torch.save(model.state_dict(), 'weights.pt')) and pass --weights weights.pt") from exc
        card = f"timm pretrained ({dict(getattr(net, 'pretrained_cfg', {})).get('tag') or 'default'})"
    else:
        path = Path(weights)
        if not path.is_file():
            raise CamlabError(f"no weights file at {path}")
        state = _state_dict(path, device)
        heads = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
        classes = heads[-1].shape[0] if heads else 1000
        net = fitted_model(lambda: timm.create_model(name, pretrained=False, num_classes=classes), state, path.name)
        card = f"{path.name}"
    config = resolve_data_config({}, model=net)
    size = int(config["input_size"][-1])
    mean, std = tuple(float(v) for v in config["mean"]), tuple(float(v) for v in config["std"])
    classes = int(getattr(net, "num_classes"))
    names = imagenet_names("resnet18") if classes == 1000 else [str(i) for i in range(classes)]
    loaded = LoadedModel(_Normalised(net, mean, std).to(device).eval(), f"timm:{name}", f"timm:{name}", names, None,
                         {"weights": card}, size)
    return AuditModel(loaded, Preprocessing(size, float(config.get("crop_pct", 1.0)), mean, std, "timm's data config"),
                      f"timm:{name}")


def load_audit_model(spec: str, weights: str | None = None, device: str | torch.device = "cpu",
                     allow_download: bool = True) -> AuditModel:
    """The model ``spec`` names (see the module docstring). ``weights``: for torchvision ``DEFAULT``
    (ImageNet, downloaded with a progress bar when missing), ``random``, or a state_dict file; for
    timm the same; ignored for a checkpoint path."""
    if not isinstance(spec, str) or not spec:
        raise CamlabError("name a model: a torchvision architecture, timm:<name>, or a checkpoint file")
    if spec.startswith(TIMM):
        return _timm(spec[len(TIMM):], weights, device)
    if spec in TORCHVISION_MODELS:
        if weights is None or weights == "DEFAULT" or weights in RANDOM:
            loaded = load_torchvision(spec, device, pretrained=weights not in RANDOM, allow_download=allow_download)
        else:
            loaded = load_checkpoint(weights, device, architecture=spec)
        return AuditModel(loaded, preprocessing_for(loaded), spec)
    path = Path(spec)
    if not path.suffix and not path.exists() and "/" not in spec:
        loaded = load_checkpoint(spec, device)  # a shipped model by name
    elif path.is_file():
        loaded = load_checkpoint(path, device)
    else:
        raise CamlabError(f"{spec!r} is not a torchvision architecture ({', '.join(TORCHVISION_MODELS)}), "
                          "timm:<name>, a shipped model or a checkpoint file")
    return AuditModel(loaded, preprocessing_for(loaded), spec)


def preprocessing_for(loaded: LoadedModel) -> Preprocessing:
    """The preprocessing a loaded torchvision or camlab model takes (timm models carry their own)."""
    if loaded.architecture in TORCHVISION_MODELS:
        return Preprocessing(loaded.input_size, _torchvision_crop(loaded.architecture), IMAGENET_MEAN, IMAGENET_STD,
                             f"torchvision's {loaded.architecture} DEFAULT weights' transforms")
    if loaded.architecture in PAPER_ARCHITECTURES:
        return Preprocessing(loaded.input_size, 224 / 256, IMAGENET_MEAN, IMAGENET_STD,
                             "the paper's transforms (Resize(256), CenterCrop(224), ImageNet's mean and std)")
    return Preprocessing(loaded.input_size, 1.0, IMAGENET_MEAN, IMAGENET_STD,
                         "the checkpoint's input size (centre square, as it was trained)")
