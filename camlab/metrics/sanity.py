"""Sanity checks that run the explainer again: on changed models (Adebayo et al. 2018; Smooth and
Efficient MPRT, Hedström et al. 2023) and for another class (the random-logit test, Sixt et al. 2020)."""
from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from typing import overload

import torch
from torch import nn

from ..checks import finite_number, whole_number
from ..engine import Explanation, explain
from ..errors import CamlabError
from ..reshape import Reshape
from .catalog import Better, register_metric
from .similarity import spearman, ssim

for _key, _words in (("rank", "Spearman of display maps"), ("rank_raw", "Spearman of signed raw maps"),
                     ("ssim", "SSIM of display maps")):
    for _end, _what in (("top", "top layer randomised"), ("all", "every layer randomised"),
                        ("first", "only the input-side layer randomised")):
        # near 0 is the good outcome, not "lower": a method's map should stop resembling itself
        register_metric(f"sanity_{_key}_{_end}", group="sanity", better=Better.NONE, low=-1,
                        words=f"sanity, {_words}, {_what} (near 0 is good)", needs=("model", "explainer"))


RANDOMISATION_INITS = ("noise", "reset")


def _randomise(module: nn.Module, init: str, generator: torch.Generator, seed: int) -> None:
    with torch.no_grad():
        if init == "reset":
            # The layer's own initialisation (a BatchNorm's running statistics included), from a
            # seed of its own so the rest of the program's random stream is left alone.
            devices = [p.device for p in module.parameters(recurse=False) if p.device.type == "cuda"][:1]
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                getattr(module, "reset_parameters")()
            return
        for param in module.parameters(recurse=False):
            # Noise drawn on the CPU from one seed, so every device randomises alike, at the
            # parameter's own scale: its spread, or for a one-element parameter (a PReLU slope,
            # a one-output bias), whose spread is undefined, its magnitude.
            scale = param.std() if param.numel() > 1 else param.abs().flatten()[0]
            param.copy_(torch.randn(param.shape, generator=generator).to(param) * scale.clamp(min=1e-3))


def randomised_models(model: nn.Module, seed: int = 0, *, independent: bool = False, init: str = "noise",
                      ) -> Iterator[tuple[str, nn.Module]]:
    """``(layer name, randomised copy)`` for each parametrised layer from the output down: cumulatively
    (each copy also has the layers before it randomised; the last one is the fully randomised model)
    or, ``independent``, each layer alone in a fresh copy. One copy is changed in place between
    steps when cumulative: use each before asking for the next. ``model`` itself is never changed."""
    if init not in RANDOMISATION_INITS:
        raise CamlabError(f"unknown randomisation {init!r}; choose one of {', '.join(RANDOMISATION_INITS)}")

    def steps() -> Iterator[tuple[str, nn.Module]]:
        twin = copy.deepcopy(model)
        generator = torch.Generator().manual_seed(seed)
        layers = [(name, m) for name, m in twin.named_modules() if hasattr(m, "reset_parameters") and
                  any(True for _ in m.parameters(recurse=False))]
        for step, (name, module) in enumerate(reversed(layers)):
            if independent and step:
                twin = copy.deepcopy(model)  # only this layer random: the others as trained
                module = twin.get_submodule(name)
            _randomise(module, init, generator, seed + step)
            yield name, twin

    return steps()


def _top_and_full(model: nn.Module, seed: int, init: str) -> tuple[nn.Module, nn.Module]:
    """The cascade's first and last models: the top layer randomised, and every layer (as
    :func:`cascading_randomisation` randomises them with the same seed)."""
    top = full = None
    for _, twin in randomised_models(model, seed, init=init):
        top = copy.deepcopy(twin) if top is None else top
        full = twin
    if top is None or full is None:
        raise CamlabError("the model has no parametrised layer to randomise")
    return top, full


def _similarities(display: torch.Tensor, other_display: torch.Tensor, raw: torch.Tensor,
                  other_raw: torch.Tensor) -> dict[str, float]:
    """How alike two explanations are, means over the images: Spearman of the display maps
    (``rank``) and of the signed raw maps (``rank_raw``), SSIM of the display maps (``ssim``)."""
    return {"rank": float(spearman(display, other_display).mean()), "rank_raw": float(spearman(raw, other_raw).mean()),
            "ssim": float(ssim(display, other_display).mean())}


@overload  # a str is a Sequence[str] too: this first overload wins for one method
def cascading_randomisation(  # pyright: ignore[reportOverlappingOverload]
                            model: nn.Module, images: torch.Tensor, method: str, target_layer: str,
                            classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *,
                            independent: bool = False, init: str = "noise", reference: Explanation | None = None,
                            ) -> list[dict[str, float | str]]: ...
@overload
def cascading_randomisation(model: nn.Module, images: torch.Tensor, method: Sequence[str], target_layer: str,
                            classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *,
                            independent: bool = False, init: str = "noise", reference: Explanation | None = None,
                            ) -> dict[str, list[dict[str, float | str]]]: ...
def cascading_randomisation(model: nn.Module, images: torch.Tensor, method: str | Sequence[str], target_layer: str,
                            classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *,
                            independent: bool = False, init: str = "noise", reference: Explanation | None = None,
                            ) -> list[dict[str, float | str]] | dict[str, list[dict[str, float | str]]]:
    """Re-initialise the model's parametrised layers from the output down, cumulatively, and compare
    each randomised model's map with the trained model's, as Adebayo et al. do: mean over images of
    the Spearman rank correlation (average ranks for ties) of the display maps (``rank``) and of the
    signed raw maps (``rank_raw``), and the SSIM of the display maps (``ssim``). A method that
    explains *this* model decorrelates quickly. One entry per randomised layer, output side first.

    ``method`` a name: that list; a sequence of names: one list per method, all explained in one
    call per randomised model (gradient methods share its forward and backward), each equal to what
    the method alone gets (the randomisation depends on the seed only).

    ``independent``: each layer randomised alone in a fresh copy of the trained model (Adebayo et
    al.'s independent variant) instead of cumulatively. ``init``: ``"noise"`` (Gaussian noise at
    each parameter's own scale, drawn on the CPU: the same on every device) or ``"reset"`` (the
    layer's own ``reset_parameters``, batch norms' running statistics included, as Quantus does).
    ``reference``: the trained model's explanation of these images and classes, when already made."""
    methods = [method] if isinstance(method, str) else list(method)
    if reference is None:
        reference = explain(model, images, methods, target_layer, targets=classes, reshape=reshape)
    report: dict[str, list[dict[str, float | str]]] = {m: [] for m in methods}
    for name, twin in randomised_models(model, seed, independent=independent, init=init):
        randomised = explain(twin, images, methods, target_layer, targets=classes, reshape=reshape)
        for m in methods:
            report[m].append({"layer": name, **_similarities(reference[m].display, randomised[m].display,
                                                             reference[m].raw, randomised[m].raw)})
    return report[method] if isinstance(method, str) else report


for _key, _words in (("rank", "Spearman of display maps"), ("rank_raw", "Spearman of signed raw maps"),
                     ("ssim", "SSIM of display maps")):
    register_metric(f"sanity_{_key}_logit", group="sanity", better=Better.NONE, low=-1,
                    words=f"sanity, {_words}, the explained class against a random other class (near 0 is good)",
                    needs=("model", "explainer"))


@overload  # a str is a Sequence[str] too: this first overload wins for one method
def random_logit(  # pyright: ignore[reportOverlappingOverload]
                 model: nn.Module, images: torch.Tensor, method: str, target_layer: str,
                 classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, reference: Explanation | None = None,
                            ) -> dict[str, float]: ...
@overload
def random_logit(model: nn.Module, images: torch.Tensor, method: Sequence[str], target_layer: str,
                 classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, reference: Explanation | None = None,
                            ) -> dict[str, dict[str, float]]: ...
def random_logit(model: nn.Module, images: torch.Tensor, method: str | Sequence[str], target_layer: str,
                 classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, reference: Explanation | None = None,
                 ) -> dict[str, float] | dict[str, dict[str, float]]:
    """The random-logit test (Sixt et al. 2020): each image's map for its explained class against its
    map for another class drawn uniformly from the rest (from ``seed``, on the CPU), as
    :func:`cascading_randomisation` compares them (``rank``, ``rank_raw``, ``ssim``, means over the
    images). A map that explains the *decision* differs between classes; one that draws the object
    whatever the class asked for stays near 1. ``reference`` as for :func:`cascading_randomisation`."""
    methods = [method] if isinstance(method, str) else list(method)
    if reference is None:
        reference = explain(model, images, methods, target_layer, targets=classes, reshape=reshape)
    count = reference.logits.shape[1]
    if count < 2:
        raise CamlabError("the random-logit test needs a model with at least two classes")
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, count, (images.shape[0],), generator=generator).to(classes.device)
    others = (classes + shift) % count  # uniform over the other classes
    other = explain(model, images, methods, target_layer, targets=others, reshape=reshape)
    report = {m: _similarities(reference[m].display, other[m].display, reference[m].raw, other[m].raw)
              for m in methods}
    return report[method] if isinstance(method, str) else report


SMOOTH_SAMPLES = 8  # Quantus's default is 50: 8 keeps the sanity group affordable on a CPU
SMOOTH_NOISE = 0.1  # the noise's standard deviation as a share of each image's value range (Quantus's)
for _key, _words in (("rank", "Spearman of display maps"), ("rank_raw", "Spearman of signed raw maps"),
                     ("ssim", "SSIM of display maps")):
    for _end, _what in (("top", "top layer randomised"), ("all", "every layer randomised")):
        register_metric(f"sanity_{_key}_smooth_{_end}", group="sanity", better=Better.NONE, low=-1,
                        words=f"Smooth MPRT, {_words} averaged over noisy inputs, {_what} (near 0 is good)",
                        needs=("model", "explainer"))
register_metric("sanity_emprt", group="sanity", better=Better.HIGHER, low=-1, high=math.inf,
                words="Efficient MPRT: the rise in the map's histogram entropy when every layer is randomised",
                needs=("model", "explainer"))


def _smoothed(model: nn.Module, images: torch.Tensor, methods: list[str], target_layer: str, classes: torch.Tensor,
              samples: int, noise: float, seed: int, reshape: Reshape) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each method's display and raw maps averaged over ``samples`` noisy copies of the images (the
    last one noise-free, as Quantus does), one explanation per copy so memory stays that of one batch."""
    generator = torch.Generator().manual_seed(seed)  # the same noise for every model compared
    spread = (images.amax(dim=(1, 2, 3)) - images.amin(dim=(1, 2, 3)))[:, None, None, None]
    sums: dict[str, list[torch.Tensor]] = {}
    for sample in range(samples):
        noisy = images if sample == samples - 1 else \
            images + torch.randn(images.shape, generator=generator).to(images) * noise * spread
        found = explain(model, noisy, methods, target_layer, targets=classes, reshape=reshape)
        for m in methods:
            maps = (found[m].display, found[m].raw)
            sums[m] = list(maps) if m not in sums else [total + new for total, new in zip(sums[m], maps)]
    return {m: (display / samples, raw / samples) for m, (display, raw) in sums.items()}


@overload  # a str is a Sequence[str] too: this first overload wins for one method
def smooth_mprt(  # pyright: ignore[reportOverlappingOverload]
                model: nn.Module, images: torch.Tensor, method: str, target_layer: str,
                classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *, init: str = "noise",
                samples: int = SMOOTH_SAMPLES, noise: float = SMOOTH_NOISE) -> dict[str, float]: ...
@overload
def smooth_mprt(model: nn.Module, images: torch.Tensor, method: Sequence[str], target_layer: str,
                classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *, init: str = "noise",
                samples: int = SMOOTH_SAMPLES, noise: float = SMOOTH_NOISE) -> dict[str, dict[str, float]]: ...
def smooth_mprt(model: nn.Module, images: torch.Tensor, method: str | Sequence[str], target_layer: str,
                classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *, init: str = "noise",
                samples: int = SMOOTH_SAMPLES, noise: float = SMOOTH_NOISE,
                ) -> dict[str, float] | dict[str, dict[str, float]]:
    """Smooth MPRT (Hedström et al. 2023): the cascade's comparison with each model's maps averaged
    over ``samples`` noisy copies of the images (Gaussian, standard deviation ``noise`` times each
    image's value range), which removes the gradient noise that makes plain MPRT flag a method whose
    maps are merely noisy. ``rank_smooth_top`` / ``_all`` (and ``rank_raw``, ``ssim``): the trained
    model against the top layer, and against every layer, randomised as :func:`cascading_randomisation`
    randomises them (same ``seed`` and ``init``)."""
    methods = [method] if isinstance(method, str) else list(method)
    samples = whole_number("samples", samples, 1, 256)
    noise = finite_number("noise", noise, 0.0, 1.0)
    top, full = _top_and_full(model, seed, init)
    smoothed = [_smoothed(m, images, methods, target_layer, classes, samples, noise, seed, reshape)
                for m in (model, top, full)]
    report = {}
    for m in methods:
        (display, raw), *randomised = (found[m] for found in smoothed)
        report[m] = {f"{key}_smooth_{end}": value for end, (other_display, other_raw) in zip(("top", "all"), randomised)
                     for key, value in _similarities(display, other_display, raw, other_raw).items()}
    return report[method] if isinstance(method, str) else report


ENTROPY_BINS = 100  # Quantus's discrete entropy: 100 equal bins over the map's own range


def histogram_entropy(maps: torch.Tensor, bins: int = ENTROPY_BINS) -> torch.Tensor:
    """The Shannon entropy (nats) of each (N, ...) map's histogram of ``bins`` equal bins between its
    minimum and maximum (``scipy.stats.entropy(numpy.histogram(map, bins))``); 0 for a constant map."""
    flat = maps.flatten(1).double()
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    width = (high - low).clamp(min=torch.finfo(torch.float64).tiny)
    index = ((flat - low) / width * bins).long().clamp(0, bins - 1)  # the maximum joins the last bin, as numpy's
    counts = torch.zeros(flat.shape[0], bins, dtype=torch.float64, device=flat.device).scatter_add_(
        1, index, torch.ones_like(flat))
    share = counts / flat.shape[1]
    return -(share * share.clamp(min=1e-300).log()).sum(1)


@overload  # a str is a Sequence[str] too: this first overload wins for one method
def efficient_mprt(  # pyright: ignore[reportOverlappingOverload]
                   model: nn.Module, images: torch.Tensor, method: str, target_layer: str,
                   classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *, init: str = "noise",
                   reference: Explanation | None = None) -> float: ...
@overload
def efficient_mprt(model: nn.Module, images: torch.Tensor, method: Sequence[str], target_layer: str,
                   classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *, init: str = "noise",
                   reference: Explanation | None = None) -> dict[str, float]: ...
def efficient_mprt(model: nn.Module, images: torch.Tensor, method: str | Sequence[str], target_layer: str,
                   classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *, init: str = "noise",
                   reference: Explanation | None = None) -> float | dict[str, float]:
    """Efficient MPRT (Hedström et al. 2023): the relative rise in the display map's complexity, its
    :func:`histogram_entropy`, from the trained model to the fully randomised one (randomised as
    :func:`cascading_randomisation` randomises every layer), mean over the images whose trained map
    is not constant (NaN when all are). Higher is better: a map that explains the model falls apart
    into noise when the model is random. ``reference`` as for :func:`cascading_randomisation`."""
    methods = [method] if isinstance(method, str) else list(method)
    if reference is None:
        reference = explain(model, images, methods, target_layer, targets=classes, reshape=reshape)
    _, full = _top_and_full(model, seed, init)
    randomised = explain(full, images, methods, target_layer, targets=classes, reshape=reshape)
    report = {}
    for m in methods:
        trained, random = histogram_entropy(reference[m].display), histogram_entropy(randomised[m].display)
        defined = trained > 0
        rise = (random[defined] - trained[defined]) / trained[defined]
        report[m] = float(rise.mean()) if defined.any() else math.nan
    return report[method] if isinstance(method, str) else report
