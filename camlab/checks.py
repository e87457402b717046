"""Checks at the library's boundary: every public entry point validates its inputs once, here, and
turns a bad one into a :class:`CamlabError` that names the input and says what to do — never a
traceback from deep inside torch, a silent broadcast, a NaN result or a huge allocation."""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .device import model_device
from .errors import CamlabError


def whole_number(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; bools, floats and out-of-range numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CamlabError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f"of at least {low}"
        raise CamlabError(f"{name} must be a whole number {bounds}, got {value}")
    return value


def finite_number(name: str, value: object, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a finite float in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise CamlabError(f"{name} must be a finite number, got {value!r}")
    if not low <= float(value) <= high:
        raise CamlabError(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def input_channels(model: nn.Module) -> int | None:
    """The channels the model's first convolution reads, if it has one."""
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.in_channels
    return None


def check_images(model: nn.Module, images: object) -> torch.Tensor:
    """A non-empty (N, C, H, W) floating batch of finite values, in the model's dtype, channels and device."""
    if not isinstance(images, torch.Tensor):
        raise CamlabError(f"images must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4:
        raise CamlabError(f"images must be a 4-D batch (N, C, H, W), got shape {tuple(images.shape)}; "
                          "add a batch dimension with images.unsqueeze(0)")
    if images.shape[0] == 0 or images.shape[-1] == 0 or images.shape[-2] == 0:
        raise CamlabError(f"images must hold at least one non-empty image, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise CamlabError(f"images must be floating point in [0, 1], got {images.dtype}; convert with images.float() / 255")
    weights = next((p.dtype for p in model.parameters()), images.dtype)
    if images.dtype != weights:
        raise CamlabError(f"images are {images.dtype} but the model's weights are {weights}; "
                          f"convert with images.to({weights})")
    channels = input_channels(model)
    if channels is not None and images.shape[1] != channels:
        raise CamlabError(f"the model reads {channels}-channel images, got {images.shape[1]} channels "
                          f"(shape {tuple(images.shape)}); convert grey or RGBA images to RGB first")
    device = model_device(model)
    if images.device != device:
        raise CamlabError(f"the model is on {device} but the images are on {images.device}; "
                          f"move them with images.to('{device}')")
    if not bool(torch.isfinite(images).all()):
        raise CamlabError("images contain NaN or infinite values; replace them before explaining")
    return images


def check_maps(maps: object, like: torch.Tensor | None = None, name: str = "maps") -> torch.Tensor:
    """Saliency maps (N, H, W): floating, finite, non-negative; with ``like`` (N, C, H, W images),
    one map per image at the images' size (no broadcasting)."""
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise CamlabError(f"{name} must be a batch of maps (N, H, W), got {shape}; add a batch dimension "
                          "with maps.unsqueeze(0)")
    if not maps.is_floating_point():
        maps = maps.float()
    if maps.shape[0] == 0:
        raise CamlabError(f"{name} hold no map")
    if not bool(torch.isfinite(maps).all()):
        raise CamlabError(f"{name} contain NaN or infinite values")
    if bool((maps < 0).any()):
        raise CamlabError(f"{name} must be non-negative (display maps, or a raw map after ReLU), got a minimum of "
                          f"{float(maps.min()):.3g}")
    if like is not None and (maps.shape[0] != like.shape[0] or maps.shape[-2:] != like.shape[-2:]):
        raise CamlabError(f"{name} {tuple(maps.shape)} do not match the images {tuple(like.shape)}: one "
                          "(H, W) map per image is needed")
    return maps


def check_classes(classes: object, batch: int, num_classes: int | None = None) -> torch.Tensor:
    """Class indices (N,), integral, one per image, within the model's classes."""
    if not isinstance(classes, torch.Tensor) or classes.dim() != 1 or classes.shape[0] != batch:
        shape = tuple(classes.shape) if isinstance(classes, torch.Tensor) else type(classes).__name__
        raise CamlabError(f"classes must be a tensor of {batch} class indices, got {shape}")
    if classes.is_floating_point() or classes.dtype == torch.bool:
        raise CamlabError(f"classes must be integer indices, got {classes.dtype}")
    if num_classes is not None and bool(((classes < 0) | (classes >= num_classes)).any()):
        raise CamlabError(f"classes must lie in [0, {num_classes - 1}], got {classes.tolist()}")
    return classes.long()


def check_logits(logits: object, batch: int, finite: bool = True) -> torch.Tensor:
    """A model's output as (N, classes) logits, one row per image; with ``finite``, no NaN or infinity."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != batch:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise CamlabError(f"the model must be a classifier returning logits of shape (N, classes); it returned {shape}")
    if finite and not bool(torch.isfinite(logits).all()):
        raise CamlabError("the model's output is NaN or infinite on these images: check its weights "
                          "(a model with non-finite weights cannot be explained)")
    return logits


def run_model(model: nn.Module, images: torch.Tensor) -> object:
    """``model(images)``, with the model's own shape and dtype errors turned into one clear message."""
    try:
        return model(images)
    except (RuntimeError, IndexError) as exc:  # torch reports mismatched shapes and sizes this way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CamlabError(f"the model cannot run on images of shape {tuple(images.shape)}: {first}") from exc
