"""The CAM engine: one shared forward/backward per batch feeds every gradient method."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .checks import check_images, whole_number
from .context import shared_pass
from .device import Stopwatch
from .errors import CamlabError
from .layers import check_hookable, find_target_layer, resolve_layer
from .maps import layer_map_to_display, pixel_map_to_display
from .modes import eval_mode
from .registry import get_method
from .reshape import Reshape
from .targets import TargetSpec


@dataclass
class CAMMap:
    """One method's result for a batch.

    ``raw`` is the signed attribution: (N, h, w) at layer resolution for CAMs, (N, C, H, W) for
    pixel methods. ``display`` is (N, H, W) in [0, 1] at input resolution: ReLU, bilinear upsample,
    min-max per image for CAMs; largest magnitude over colour channels, min-max for pixel methods.
    ``seconds`` is the method's own time; ``shared_seconds`` the shared forward/backward of the
    call that computed it, which every method of that call used.
    """

    method: str
    raw: torch.Tensor
    display: torch.Tensor
    seconds: float
    shared_seconds: float = 0.0

    @property
    def total_seconds(self) -> float:
        """What this map cost: its own time plus the shared pass it was computed in."""
        return self.seconds + self.shared_seconds


@dataclass
class Explanation:
    """The maps of one call, by method name, with the logits, the explained classes (None for a
    callable target), the target layer's dotted name and the time of the shared pass of this call."""

    maps: dict[str, CAMMap]
    logits: torch.Tensor
    classes: torch.Tensor | None
    layer: str
    shared_seconds: float

    def __getitem__(self, method: str) -> CAMMap:
        return self.maps[method]

    def __iter__(self) -> Iterator[str]:
        return iter(self.maps)


@contextlib.contextmanager
def frozen_for_attribution(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration; both restored afterwards.

    Frozen parameters mean the forward before the target layer records no graph at all, so the
    shared backward only runs through the layers after it.
    """
    trainable = [param for param in model.parameters() if param.requires_grad]
    try:
        with eval_mode(model):
            for param in trainable:
                param.requires_grad_(False)
            yield model
    finally:
        for param in trainable:
            param.requires_grad_(True)


class CAMEngine:
    """Explains batches of one model at one layer; build once, call many times.

    >>> engine = CAMEngine(model, target_layer="features.29")
    >>> result = engine.explain(images, ["gradcam", "hirescam"])
    >>> result["gradcam"].display.shape  # (N, H, W)
    """

    def __init__(self, model: nn.Module, target_layer: str | nn.Module | None = None, chunk_size: int = 64,
                 reshape: Reshape = None, on_chunk: Callable[[int, int], None] | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise CamlabError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        check_hookable(model)
        chunk_size = whole_number("chunk_size", chunk_size, 1)
        self.model = model
        self.chunk_size = chunk_size
        # Score-CAM and Ablation-CAM call on_chunk(pairs done, pairs in all) after each chunk: progress, or a
        # pause that lets other work on the same device go first.
        self.on_chunk = on_chunk
        self.reshape = reshape  # how the layer's output reads as maps: camlab.reshape
        self._layer = None if target_layer is None else resolve_layer(model, target_layer)

    def layer_for(self, images: torch.Tensor) -> tuple[str, nn.Module]:
        """The target layer's name and module for ``images`` (when not given, found by a dry run on this engine's first call)."""
        if self._layer is None:
            with frozen_for_attribution(self.model):
                self._layer = find_target_layer(self.model, images, self.reshape)
        return self._layer

    def explain(
        self, images: torch.Tensor, methods: Sequence[str] = ("gradcam",), targets: TargetSpec = None,
        options: Mapping[str, Mapping[str, object]] | None = None,
    ) -> Explanation:
        """Explain ``images`` (N, C, H, W) with ``methods``; ``options`` maps a method name to its
        keyword options, e.g. ``{"conceptorcam": {"aperture": 2.0}}``."""
        if isinstance(methods, str):
            methods = [methods]
        infos = [get_method(name) for name in dict.fromkeys(methods)]
        if not infos:
            raise CamlabError("choose at least one method")
        if options is not None and not isinstance(options, Mapping):
            raise CamlabError(f"options must map method names to their options, got {options!r}")
        options = dict(options or {})
        stray = sorted(set(options) - {info.name for info in infos})
        if stray:
            raise CamlabError(f"options given for methods that were not asked for: {', '.join(stray)}")
        settings = {info.name: info.resolve_options(options.get(info.name)) for info in infos}
        check_images(self.model, images)
        name, layer = self.layer_for(images)
        size = tuple(images.shape[-2:])
        clock = Stopwatch(images.device)
        with frozen_for_attribution(self.model):
            wanted = [other for info in infos
                      for other in info.layers_to_record(self.model, name, images, self.reshape, settings[info.name])]
            extra_layers = [resolve_layer(self.model, other) for other in dict.fromkeys(wanted) if other != name]
            recordings = {info.name: recording for info in infos
                          if (recording := info.recording(self.model, settings[info.name])) is not None}
            shared_start = clock.mark()
            ctx = shared_pass(self.model, name, layer, images, targets=targets, reshape=self.reshape,
                              need_grads=any(info.needs_gradients for info in infos),
                              need_input_grads=any(info.needs_input_gradients for info in infos),
                              chunk_size=self.chunk_size, on_chunk=self.on_chunk, extra_layers=extra_layers,
                              recordings=recordings)
            shared_end = clock.mark()
            computed = {}
            for info in infos:
                start = clock.mark()
                with torch.no_grad() if not info.pixel_space else contextlib.nullcontext():
                    raw = info.run(ctx, settings[info.name]).detach()
                display = pixel_map_to_display(raw) if info.pixel_space else layer_map_to_display(raw, size)
                computed[info.name] = (raw, display, start, clock.mark())
        # one host sync for every method's check, after all the work is queued
        finite = torch.stack([torch.isfinite(raw).all() for raw, *_ in computed.values()]).tolist()
        broken = [method for method, ok in zip(computed, finite) if not ok]
        if broken:
            raise CamlabError(f"{', '.join(broken)} gave NaN or infinite values at layer {name!r} for these images; "
                              "try another method or layer")
        shared_seconds = clock.seconds(shared_start, shared_end)
        maps = {method: CAMMap(method, raw, display, clock.seconds(start, end), shared_seconds)
                for method, (raw, display, start, end) in computed.items()}
        return Explanation(maps=maps, logits=ctx.logits, classes=ctx.scorer.classes, layer=name,
                           shared_seconds=shared_seconds)


def explain(
    model: nn.Module,
    images: torch.Tensor,
    methods: Sequence[str] = ("gradcam",),
    target_layer: str | nn.Module | None = None,
    targets: TargetSpec = None,
    chunk_size: int = 64,
    options: Mapping[str, Mapping[str, object]] | None = None,
    reshape: Reshape = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> Explanation:
    """Explain a batch with several methods in one call (see :class:`CAMEngine`; ``reshape``:
    :mod:`camlab.reshape`, for transformer tokens and channels-last layers; ``on_chunk(done, total)``:
    progress of Score-CAM and Ablation-CAM, after each chunk of their extra forwards)."""
    return CAMEngine(model, target_layer, chunk_size=chunk_size, reshape=reshape, on_chunk=on_chunk).explain(
        images, methods, targets, options)
