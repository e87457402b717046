"""The method registry: every method registers itself where it is defined, with what it costs,
what it needs from the shared pass, and which options it takes.

Adding a method is one decorated function in ``camlab/methods/``::

    @register_method("mycam", family=Family.GRADIENT_CAM, cost=Cost.SHARED_BACKWARD, needs_gradients=True)
    def mycam(ctx: CAMContext, *, power: float = 1.0) -> torch.Tensor:
        \"\"\"My CAM: gradient x activation to a power.\"\"\"
        return (ctx.layer_gradients * ctx.activations).sum(1).clamp(min=0) ** power

Keyword-only parameters with defaults are the method's options; callers pass them through
``explain(..., options={"mycam": {"power": 2.0}})``.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import torch
from torch import nn

from .context import CAMContext, ForwardRecording
from .errors import CamlabError
from .reshape import Reshape

# (model, target layer's name, images, reshape, the method's settings) -> other layers' dotted names
ExtraLayers = Callable[[nn.Module, str, torch.Tensor, Reshape, Mapping[str, object]], list[str]]

# recorder(model, **the method's options but aug_smooth) -> what the shared forward records for it
Recorder = Callable[..., ForwardRecording]


class Cost(StrEnum):
    """How much work a method adds beyond the shared forward, for the UI to warn about."""

    SHARED_BACKWARD = "shares one forward + one backward"
    SHARED_FORWARD = "shares the forward + its own backward"
    FORWARD_ONLY = "forward only"
    OWN_BACKWARD = "one extra forward + backward"
    PER_CHANNEL = "one forward per channel (slow)"
    PER_SAMPLE = "one forward + backward per sample (slow)"


class Family(StrEnum):
    """What kind of explanation a method gives; pages and tables group methods by it."""

    GRADIENT_CAM = "gradient CAM"
    GRADIENT_FREE_CAM = "gradient-free CAM"
    PERTURBATION_CAM = "perturbation CAM"
    CONCEPTOR_CAM = "conceptor CAM"
    PIXEL = "pixel attribution"
    BASELINE = "sanity baseline"


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its function, family, cost, needs and options (name -> default).

    ``compute(ctx, **options)`` returns a raw signed map: (N, h, w) at the target layer's
    resolution, or (N, C, H, W) in pixel space when ``pixel_space`` is set. A method that reads other
    layers too names them with ``extra_layers(model, layer_name, images, reshape, settings)`` (dotted
    names, before any pass), and the shared pass records them for it (:meth:`CAMContext.at_layer`).
    A method that reads tensors no layer hook gives (LeGrad's attention probabilities) names a
    ``recorder``: the shared forward runs with its hooks in and ``ctx.recorded[name]`` is what it
    finished into; a context from another pass has no entry, and the method runs its own forward.
    """

    name: str
    compute: Callable[..., torch.Tensor]
    family: Family
    cost: Cost
    needs_gradients: bool = False
    needs_input_gradients: bool = False
    pixel_space: bool = False
    options: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    extra_layers: ExtraLayers | None = None
    recorder: Recorder | None = None

    @property
    def summary(self) -> str:
        """The first line of the method's docstring, for tables and tooltips."""
        return (self.compute.__doc__ or "").strip().splitlines()[0]

    @property
    def slow(self) -> bool:
        """Whether the method runs extra passes per channel or sample (computed on request in the app)."""
        return self.cost in (Cost.PER_CHANNEL, Cost.PER_SAMPLE)

    def run(self, ctx: CAMContext, settings: Mapping[str, object]) -> torch.Tensor:
        """The raw map under resolved ``settings``; ``aug_smooth`` (every method but the sanity
        baselines) averages it over test-time augmentations (:meth:`CAMContext.augmentation_mean`)."""
        options = dict(settings)
        if options.pop("aug_smooth", False):
            return ctx.augmentation_mean(lambda augmented: self.compute(augmented, **options),
                                         self.needs_gradients, self.needs_input_gradients)
        return self.compute(ctx, **options)

    def layers_to_record(self, model: nn.Module, layer_name: str, images: torch.Tensor, reshape: Reshape,
                         settings: Mapping[str, object]) -> list[str]:
        """The other layers this method reads under ``settings``, for the shared pass to record."""
        return [] if self.extra_layers is None else self.extra_layers(model, layer_name, images, reshape, settings)

    def recording(self, model: nn.Module, settings: Mapping[str, object]) -> ForwardRecording | None:
        """The recording the shared forward makes for this method under ``settings``, if it asks for one;
        none under ``aug_smooth``, whose passes are the augmented images'."""
        if self.recorder is None or settings.get("aug_smooth", False):
            return None
        return self.recorder(model, **{k: v for k, v in settings.items() if k != "aug_smooth"})

    def resolve_options(self, given: Mapping[str, object] | None) -> dict[str, object]:
        """The method's options with ``given`` applied; unknown names and non-finite numbers are refused."""
        if given is not None and not isinstance(given, Mapping):
            raise CamlabError(f"options for {self.name} must be a dict of option names to values, got {given!r}")
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise CamlabError(f"{self.name} has no option {', '.join(map(repr, unknown))}; its options: {known}")
        for key, value in given.items():
            default = self.options[key]
            if isinstance(default, bool) and not isinstance(value, bool):
                raise CamlabError(f"{self.name} option {key!r} is true or false, got {value!r}")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise CamlabError(f"{self.name} option {key!r} must be a finite number, got {value!r}")
                if isinstance(default, int):  # a count: 2.7 is refused, not truncated to 2
                    if value != int(value):
                        raise CamlabError(f"{self.name} option {key!r} is a whole number, got {value!r}")
                    given[key] = int(value)
        return {**self.options, **given}


REGISTRY: dict[str, MethodInfo] = {}


def _keyword_options(fn: Callable) -> dict[str, object]:
    options = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            if parameter.default is inspect.Parameter.empty:
                raise TypeError(f"option {name!r} of {fn.__name__} needs a default")
            options[name] = parameter.default
    return options


# What a method is: fn(ctx, *, option=default, ...) -> the (N, h, w) or (N, C, H, W) attribution.
MethodFn = Callable[..., torch.Tensor]


def register_method(name: str, *, family: Family, cost: Cost, needs_gradients: bool = False,
                    needs_input_gradients: bool = False, pixel_space: bool = False,
                    extra_layers: ExtraLayers | None = None, recorder: Recorder | None = None
                    ) -> Callable[[MethodFn], MethodFn]:
    """Decorator: register ``fn(ctx, *, option=default, ...)`` under ``name``."""

    def decorator(fn: MethodFn) -> MethodFn:
        if name in REGISTRY:
            raise ValueError(f"method {name!r} is registered twice")
        options = _keyword_options(fn)
        if family is not Family.BASELINE:
            options["aug_smooth"] = False
        REGISTRY[name] = MethodInfo(name, fn, family, cost, needs_gradients, needs_input_gradients, pixel_space,
                                    MappingProxyType(options), extra_layers, recorder)
        return fn

    return decorator


def get_method(name: str) -> MethodInfo:
    """The registered method called ``name``, or a clear error listing the known ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(REGISTRY))
        raise CamlabError(f"unknown CAM method {name!r}; known methods: {known}") from None


def list_methods() -> list[MethodInfo]:
    """Every registered method, in registration order."""
    return list(REGISTRY.values())


__all__ = ["Cost", "Family", "MethodInfo", "REGISTRY", "get_method", "list_methods", "register_method"]
