"""The method registry: one entry per method, with what it costs and what it needs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import torch

from . import conceptor, methods, perturbation, pixel
from .context import CAMContext
from .errors import CamlabError


class Cost(str, Enum):
    """How much work a method adds beyond the shared forward, for the UI to warn about."""

    SHARED_BACKWARD = "shares one forward + one backward"
    FORWARD_ONLY = "forward only"
    OWN_BACKWARD = "one extra forward + backward"
    PER_CHANNEL = "one forward per channel (slow)"


class Family(str, Enum):
    GRADIENT_CAM = "gradient CAM"
    GRADIENT_FREE_CAM = "gradient-free CAM"
    PERTURBATION_CAM = "perturbation CAM"
    CONCEPTOR_CAM = "conceptor CAM"
    PIXEL = "pixel attribution"
    BASELINE = "sanity baseline"


@dataclass(frozen=True)
class MethodInfo:
    name: str
    compute: Callable[[CAMContext], torch.Tensor]
    family: Family
    cost: Cost
    needs_gradients: bool = False
    needs_input_gradients: bool = False
    pixel_space: bool = False

    @property
    def summary(self) -> str:
        return (self.compute.__doc__ or "").strip().splitlines()[0]

    @property
    def slow(self) -> bool:
        return self.cost is Cost.PER_CHANNEL


REGISTRY: dict[str, MethodInfo] = {}


def register(info: MethodInfo) -> MethodInfo:
    if info.name in REGISTRY:
        raise ValueError(f"method {info.name!r} is registered twice")
    REGISTRY[info.name] = info
    return info


def _gradient_cam(name: str, fn) -> MethodInfo:
    return MethodInfo(name, fn, Family.GRADIENT_CAM, Cost.SHARED_BACKWARD, needs_gradients=True)


for _info in (
    _gradient_cam("gradcam", methods.gradcam),
    _gradient_cam("gradcam++", methods.gradcam_plusplus),
    _gradient_cam("xgradcam", methods.xgradcam),
    _gradient_cam("layercam", methods.layercam),
    _gradient_cam("hirescam", methods.hirescam),
    MethodInfo("eigencam", methods.eigencam, Family.GRADIENT_FREE_CAM, Cost.FORWARD_ONLY),
    MethodInfo("scorecam", perturbation.scorecam, Family.PERTURBATION_CAM, Cost.PER_CHANNEL),
    MethodInfo("ablationcam", perturbation.ablationcam, Family.PERTURBATION_CAM, Cost.PER_CHANNEL),
    MethodInfo("randomcam", methods.randomcam, Family.BASELINE, Cost.FORWARD_ONLY),
    MethodInfo(
        "gradient", pixel.gradient, Family.PIXEL, Cost.SHARED_BACKWARD,
        needs_input_gradients=True, pixel_space=True,
    ),
    MethodInfo("guided_backprop", pixel.guided_backprop, Family.PIXEL, Cost.OWN_BACKWARD, pixel_space=True),
    MethodInfo(
        "guided_gradcam", pixel.guided_gradcam, Family.PIXEL, Cost.OWN_BACKWARD,
        needs_gradients=True, pixel_space=True,
    ),
):
    register(_info)

register(MethodInfo("conceptorcam", conceptor.conceptorcam, Family.CONCEPTOR_CAM, Cost.SHARED_BACKWARD,
                    needs_gradients=True))
for _name, _base in (("gradcam", methods.gradcam), ("gradcam++", methods.gradcam_plusplus),
                     ("xgradcam", methods.xgradcam), ("layercam", methods.layercam), ("hirescam", methods.hirescam)):
    register(MethodInfo(f"conceptor-{_name}", conceptor.modulated(_base), Family.CONCEPTOR_CAM,
                        Cost.SHARED_BACKWARD, needs_gradients=True))

# The six CAMs that one shared forward (and backward) serves; the benchmark times them together.
SHARED_PASS_CAMS = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam")


def get_method(name: str) -> MethodInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise CamlabError(f"unknown CAM method {name!r}; known methods: {known}") from None


def list_methods() -> list[MethodInfo]:
    return list(REGISTRY.values())
