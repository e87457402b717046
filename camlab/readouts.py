"""The one readout pipeline: every readout and control of a batch of images, per image.

The app's per-image readouts, :func:`camlab.evaluation.evaluate` (which adds batching, sharding
and merging over a dataset) and the audit all call :func:`compute_readouts`. What it computes is
chosen by a :class:`ReadoutConfig`; the metrics it fills are registered in
:mod:`camlab.metrics.catalog` where they are defined.

Rows of the result: one per method, then (with ``controls``) ``control: all-zero``,
``control: all-ones`` and ``control: random``, and, with the ``distribution`` or ``occlusion``
groups, ``model`` (the model's confidence on perturbed images, :mod:`camlab.metrics.distribution`;
its Drop when the region's pixels are removed).

Controls are placed from ``config.seed + first_index`` (``first_index``: the batch's first image
in its dataset), so a dataset's numbers do not depend on how it is split into batches of a given
size, and one image explained on its own (``first_index=0``) gets the controls of seed 0. Every
method's matched control uses the same placement, so matched controls differ only in the values.

Metrics that rank pixels (AD@k, insertion, deletion, ROAD) break ties in ``config.tie_orders`` seeded
random orders per image (:func:`camlab.metrics.controls.tie_ranks`, from ``config.seed`` and the
image's index in its dataset, the same for every row of an image) and give their mean over the
orders; ``BatchReadouts.orders`` keeps each order's values, and ``<key>_order_sd`` (the spread across
orders of the mean over the images) is what tables show beside the mean.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .checks import finite_number, whole_number
from .engine import CAMEngine, Explanation, explain
from .errors import CamlabError
from .metrics.catalog import ORDER_SD, PER_ORDER
from .metrics.controls import COVERAGES, TIE_ORDERS, check_coverage, control_maps, matched_control, tie_ranks
from .metrics.distribution import distribution_readouts
from .metrics.faithfulness import (
    CONFIDENCE,
    MASKING_SPACES,
    REMOVAL_FILLS,
    ROAD_NOISE,
    ROAD_REMOVALS,
    check_removals,
    confidence_metrics,
    curve_ends,
    fixed_coverage_metrics,
    insertion_deletion,
    probabilities,
    region_occlusion,
    road,
    road_noise,
)
from .metrics.leakage import layer_region_shares, localisation, region_shares
from .metrics.sanity import (
    RANDOMISATION_INITS,
    SMOOTH_NOISE,
    SMOOTH_SAMPLES,
    cascading_randomisation,
    efficient_mprt,
    random_logit,
    smooth_mprt,
)
from .registry import get_method
from .reshape import Reshape

METRIC_GROUPS = ("leakage", "confidence", "coverage", "insdel", "road", "localisation", "occlusion", "distribution",
                 "sanity")
DEFAULT_GROUPS = ("leakage", "confidence", "coverage", "insdel", "localisation")
CONTROL_ROWS = {"control: all-zero": "zeros", "control: all-ones": "ones", "control: random": "random"}
CONSTANT_CONTROLS = ("control: all-zero", "control: all-ones")  # no ordering to binarise, sweep or point with
MODEL_ROW = "model"


@dataclass(frozen=True)
class ReadoutConfig:
    """What to compute: ``methods`` and their ``options``, metric ``groups`` (of
    :data:`METRIC_GROUPS`), top-k% ``coverages``, insertion/deletion ``steps``, ``fills``, the
    masking ``space``, whether to add ``controls``, the controls' and tie orders' ``seed``, on how
    many of the batch's first images the sanity group runs, in how many random orders
    (``tie_orders``) pixels of equal value are ranked, and ROAD's removal percentages and noise
    (``road_removals``, ``road_noise``: its standard deviation in [0, 1] pixel units), and how the sanity
    group randomises (``sanity_independent``: one layer at a time; ``sanity_init``: ``noise`` or
    ``reset``, :func:`camlab.metrics.sanity.cascading_randomisation`) and smooths for Smooth MPRT
    (``sanity_smooth_samples`` noisy copies, noise ``sanity_smooth_noise`` times each image's range,
    :func:`camlab.metrics.sanity.smooth_mprt`). Validated when made."""

    methods: tuple[str, ...]
    groups: tuple[str, ...] = DEFAULT_GROUPS
    coverages: tuple[float, ...] = COVERAGES
    steps: int = 16
    space: str = "pixel"
    deletion_fill: str = "black"
    insertion_start: str = "blur"
    controls: bool = True
    seed: int = 0
    options: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    sanity_images: int = 16  # the sanity group re-explains on every randomised layer: its first images only
    tie_orders: int = TIE_ORDERS
    road_removals: tuple[float, ...] = ROAD_REMOVALS
    road_noise: float = ROAD_NOISE
    sanity_independent: bool = False
    sanity_init: str = "noise"
    sanity_smooth_samples: int = SMOOTH_SAMPLES
    sanity_smooth_noise: float = SMOOTH_NOISE

    def __post_init__(self) -> None:
        methods = tuple(self.methods)
        if not methods:
            raise CamlabError("pick at least one method")
        for method in methods:
            get_method(method).resolve_options((self.options or {}).get(method))  # unknown names fail here
        groups = tuple(self.groups)
        unknown = sorted(set(groups) - set(METRIC_GROUPS))
        if unknown:
            raise CamlabError(f"unknown metric group(s) {', '.join(unknown)}; choose from {', '.join(METRIC_GROUPS)}")
        for name, value, choices in (("space", self.space, MASKING_SPACES), ("deletion fill", self.deletion_fill, REMOVAL_FILLS),
                                     ("insertion start", self.insertion_start, REMOVAL_FILLS)):
            if value not in choices:
                raise CamlabError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "coverages", tuple(check_coverage(k) for k in self.coverages))
        object.__setattr__(self, "steps", whole_number("steps", self.steps, 1, 1024))
        object.__setattr__(self, "seed", whole_number("seed", self.seed, 0))
        object.__setattr__(self, "sanity_images", whole_number("sanity_images", self.sanity_images, 1))
        object.__setattr__(self, "tie_orders", whole_number("tie_orders", self.tie_orders, 1, 64))
        object.__setattr__(self, "road_removals", check_removals(self.road_removals))
        object.__setattr__(self, "road_noise", finite_number("road_noise", self.road_noise, 0.0, 1.0))
        object.__setattr__(self, "sanity_smooth_samples",
                           whole_number("sanity_smooth_samples", self.sanity_smooth_samples, 1, 256))
        object.__setattr__(self, "sanity_smooth_noise",
                           finite_number("sanity_smooth_noise", self.sanity_smooth_noise, 0.0, 1.0))
        if not isinstance(self.sanity_independent, bool):
            raise CamlabError(f"sanity_independent is True or False, got {self.sanity_independent!r}")
        if self.sanity_init not in RANDOMISATION_INITS:
            raise CamlabError(f"unknown sanity_init {self.sanity_init!r}; choose one of {', '.join(RANDOMISATION_INITS)}")

    def wants(self, group: str) -> bool:
        """Whether this config computes the metric group ``group``."""
        return group in self.groups

    @property
    def faithful(self) -> bool:
        """Whether any group runs the model on map-changed images (and so wants controls)."""
        return bool({"confidence", "coverage", "insdel", "road", "localisation"} & set(self.groups))


@dataclass
class BatchReadouts:
    """Per-image readouts of one batch: ``values[row][metric]`` (N,) tensors, ``curves[row][kind]``
    (N, steps + 1) insertion/deletion curves (means over the tie orders), ``sanity[method]`` (means
    over the batch), ``seconds[method]`` (the method's compute time), ``classes`` the explained
    classes, and ``orders[row][metric]`` (N, K) each tie order's value of the metrics that rank pixels."""

    values: dict[str, dict[str, torch.Tensor]]
    curves: dict[str, dict[str, torch.Tensor]]
    sanity: dict[str, dict[str, float]]
    seconds: dict[str, float]
    classes: torch.Tensor
    orders: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


def compute_readouts(model: nn.Module, images: torch.Tensor, config: ReadoutConfig, *, layer: str | nn.Module | None = None,
                     reshape: Reshape = None, explanation: Explanation | None = None,
                     region: torch.Tensor | None = None, masks: torch.Tensor | None = None,
                     targets: torch.Tensor | None = None, first_index: int = 0, scorer: nn.Module | None = None,
                     on_progress: Callable[[int, int], None] | None = None) -> BatchReadouts:
    """Every readout of ``config`` for ``images`` (N, 3, H, W): the maps explain ``targets`` (default
    each image's top class) at ``layer``, or come from ``explanation`` when already computed.
    ``region`` (H, W) or (N, H, W) is where leakage is measured (what the model cannot use);
    ``masks`` (N, H, W) the objects localisation is measured on. Groups that need a missing region
    or masks are skipped. ``scorer``: the model the metrics run (default ``model``; a caller with
    many batches passes :func:`camlab.metrics.faithfulness.scoring_copy`); explanations and the
    sanity check always use ``model``. ``on_progress(done, total)`` after each stage."""
    stages = ["explain", *[g for g in METRIC_GROUPS if config.wants(g)]]
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, len(stages))

    if explanation is None:
        engine = CAMEngine(model, layer, reshape=reshape)
        explanation = engine.explain(images, list(config.methods), targets, options=config.options)
    missing = [m for m in config.methods if m not in explanation.maps]
    if missing:
        raise CamlabError(f"the explanation has no map for {', '.join(missing)}")
    advance()
    classes = explanation.classes
    if classes is None:
        raise CamlabError("readouts need the explanation's classes: explain with class targets, not a custom scorer")
    work = _BatchWork(model, model if scorer is None else scorer, images, config, explanation, classes, reshape,
                      region, masks, first_index)
    measure = {"leakage": work.leakage, "confidence": work.confidence, "coverage": work.coverage, "insdel": work.insdel,
               "road": work.road, "localisation": work.localisation, "occlusion": work.occlusion,
               "distribution": work.distribution, "sanity": work.sanity}
    for group in stages[1:]:
        measure[group]()
        advance()
    seconds = {m: explanation[m].total_seconds for m in config.methods}
    return BatchReadouts({row: found for row, found in work.values.items() if found}, work.curves, work.sanity_rows,
                         seconds, classes, work.orders)


class _BatchWork:
    """One batch's readouts as :func:`compute_readouts` gathers them: a method per metric group, and what
    the groups share (the maps and controls, the clean probabilities, the tie ranks), made once."""

    def __init__(self, model: nn.Module, scorer: nn.Module, images: torch.Tensor, config: ReadoutConfig,
                 explanation: Explanation, classes: torch.Tensor, reshape: Reshape, region: torch.Tensor | None,
                 masks: torch.Tensor | None, first_index: int) -> None:
        self.model, self.scorer, self.images, self.config = model, scorer, images, config
        self.explanation, self.classes, self.reshape, self.region, self.masks = explanation, classes, reshape, region, masks
        self.seed = config.seed + first_index
        self.indices = first_index + torch.arange(images.shape[0])
        self.maps = {m: explanation[m].display for m in config.methods}
        self.rows = dict(self.maps)
        if config.controls and config.faithful:
            like = next(iter(self.maps.values()))
            self.rows.update({name: control_maps(kind, like, self.seed) for name, kind in CONTROL_ROWS.items()})
        # maps whose ordering means something
        self.ordered = {row: self.rows[row] for row in self.rows if row not in CONSTANT_CONTROLS}
        self.values: dict[str, dict[str, torch.Tensor]] = {row: {} for row in self.rows}
        self.orders: dict[str, dict[str, torch.Tensor]] = {}
        self.curves: dict[str, dict[str, torch.Tensor]] = {}
        self.sanity_rows: dict[str, dict[str, float]] = {}

    @functools.cached_property
    def clean(self) -> torch.Tensor:
        """The clean images' probabilities of their classes, once for every faithfulness group."""
        return probabilities(self.scorer, self.images, self.classes)

    @functools.cached_property
    def ranks(self) -> torch.Tensor:
        """The ordered rows' tie ranks, stacked as _stacked stacks them, once for every group that ranks."""
        return tie_ranks(torch.cat(list(self.ordered.values())), self.config.tie_orders, self.config.seed,
                         self.indices.repeat(len(self.ordered)))

    def _keep(self, row: str, measured: dict[str, torch.Tensor], keys: Iterable[str]) -> None:
        for key in keys:
            self.values[row][key] = measured[key]
            if key + PER_ORDER in measured:
                self.orders.setdefault(row, {})[key] = measured[key + PER_ORDER]

    def _repeated(self, times: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The images, classes and clean probabilities once per stacked map set."""
        return self.images.repeat(times, 1, 1, 1), self.classes.repeat(times), self.clean.repeat(times)

    def leakage(self) -> None:
        if self.region is None:
            return
        for method, display in self.maps.items():
            self.values[method].update({f"leakage_{k}": v for k, v in region_shares(display, self.region).items()})
            if not get_method(method).pixel_space:
                raw = self.explanation[method].raw
                self.values[method].update({f"layer_leakage_{k}": v
                                            for k, v in layer_region_shares(raw, self.region).items()})

    def confidence(self) -> None:
        config = self.config
        matched = ({f"{m} (matched)": matched_control(s, self.seed) for m, s in self.maps.items()}
                   if config.controls else {})
        together = {**self.rows, **matched}

        def measure(stack: torch.Tensor, times: int) -> dict[str, torch.Tensor]:
            images, classes, clean = self._repeated(times)
            return confidence_metrics(self.scorer, images, stack, classes, config.space, clean=clean)

        for row, measured in _stacked(measure, together).items():
            target = self.values[row.removesuffix(" (matched)")]
            suffix = "_matched" if row.endswith(" (matched)") else ""
            target.update({f"{k}{suffix}": measured[k] for k in CONFIDENCE})
            if not suffix:
                target["map_mean"] = together[row].flatten(1).mean(1)  # the coverage Drop rewards
                target["masked_class"] = measured["masked_class"]

    def coverage(self) -> None:
        def measure(stack: torch.Tensor, times: int) -> dict[str, torch.Tensor]:
            images, classes, clean = self._repeated(times)
            return fixed_coverage_metrics(self.scorer, images, stack, classes, self.config.coverages, self.config.space,
                                          clean=clean, ranks=self.ranks)

        for row, measured in _stacked(measure, self.ordered).items():
            self._keep(row, measured, [k for k in measured if not k.endswith(PER_ORDER)])

    def insdel(self) -> None:
        config = self.config
        ends = curve_ends(self.scorer, self.images, self.classes, config.deletion_fill, config.insertion_start)

        def measure(stack: torch.Tensor, times: int) -> dict[str, torch.Tensor]:
            images, classes, clean = self._repeated(times)
            return insertion_deletion(self.scorer, images, stack, classes, config.steps,
                                      deletion_fill=config.deletion_fill, insertion_start=config.insertion_start,
                                      clean=clean, ends=ends.repeat(1, times), ranks=self.ranks)

        for row, measured in _stacked(measure, self.ordered).items():
            self._keep(row, measured, ("insertion_auc", "deletion_auc"))
            self.curves.setdefault(row, {}).update({kind: measured[f"{kind}_curve"] for kind in ("insertion", "deletion")})

    def road(self) -> None:
        config = self.config
        noise = road_noise(self.images, self.indices, config.road_noise, config.seed)

        def measure(stack: torch.Tensor, times: int) -> dict[str, torch.Tensor]:
            images, classes, clean = self._repeated(times)
            return road(self.scorer, images, stack, classes, config.road_removals, noise.repeat(times, 1, 1, 1),
                        clean=clean, ranks=self.ranks)

        for row, measured in _stacked(measure, self.ordered).items():
            self._keep(row, measured, ("road_morf", "road_lerf", "road_combined"))
            self.curves.setdefault(row, {}).update({f"road_{d}": measured[f"road_{d}_curve"] for d in ("morf", "lerf")})

    def localisation(self) -> None:
        if self.masks is None:
            return
        for row in self.ordered:
            self.values[row].update(localisation(self.rows[row], self.masks.to(self.rows[row].device)))

    def occlusion(self) -> None:
        if self.region is None:
            return
        self.values.setdefault(MODEL_ROW, {}).update(region_occlusion(
            self.scorer, self.images, self.region, self.classes, self.config.deletion_fill, clean=self.clean))

    def distribution(self) -> None:
        self.values.setdefault(MODEL_ROW, {}).update(distribution_readouts(self.scorer, self.images, self.classes,
                                                                           self.seed))

    def sanity(self) -> None:
        config, model, layer, reshape = self.config, self.model, self.explanation.layer, self.reshape
        few = slice(0, config.sanity_images)
        images, classes, methods = self.images[few], self.classes[few], config.methods
        # The trained model's maps of these images, made once for every check (the batch's own
        # explanation may come from a caller with other options).
        reference = explain(model, images, list(methods), layer, targets=classes, reshape=reshape)
        cascades = cascading_randomisation(model, images, methods, layer, classes, reshape=reshape,
                                           independent=config.sanity_independent, init=config.sanity_init,
                                           reference=reference)  # all methods per layer at once
        logit = random_logit(model, images, methods, layer, classes, seed=config.seed, reshape=reshape,
                             reference=reference)
        smooth = smooth_mprt(model, images, methods, layer, classes, reshape=reshape, init=config.sanity_init,
                             samples=config.sanity_smooth_samples, noise=config.sanity_smooth_noise)
        emprt = efficient_mprt(model, images, methods, layer, classes, reshape=reshape, init=config.sanity_init,
                               reference=reference)
        last = "first" if config.sanity_independent else "all"  # the input-side layer alone, or every layer
        for method, cascade in cascades.items():
            row = {f"sanity_{key}_{end}": float(cascade[index][key])
                   for end, index in (("top", 0), (last, -1)) for key in ("rank", "rank_raw", "ssim")}
            row.update({f"sanity_{key}_logit": value for key, value in logit[method].items()})
            row.update({f"sanity_{key}": value for key, value in smooth[method].items()})
            row["sanity_emprt"] = emprt[method]
            self.sanity_rows[method] = row


def _stacked(measure: Callable[[torch.Tensor, int], dict[str, torch.Tensor]],
             rows: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``measure`` run once on every row's maps stacked (rows x N images go through the model in
    shared chunks), split back per row (along the first dimension of every value)."""
    if not rows:
        return {}
    names = list(rows)
    n = rows[names[0]].shape[0]
    measured = measure(torch.cat([rows[name] for name in names]), len(names))
    return {name: {key: value[i * n : (i + 1) * n] for key, value in measured.items()} for i, name in enumerate(names)}


def order_spread(per_order: torch.Tensor) -> torch.Tensor:
    """The standard deviation across tie orders of the mean over images, from (N, K) values per order."""
    return per_order.double().mean(0).std()


def merged_rows(readouts: BatchReadouts, image: int = 0) -> dict[str, dict[str, Any]]:
    """One image's readouts as plain floats per row (its curves as lists of floats), the shape the
    app shows and caches."""
    rows: dict[str, dict[str, Any]] = {row: {key: float(value[image]) for key, value in found.items() if key != "masked_class"}
            for row, found in readouts.values.items()}
    for row, found in readouts.orders.items():
        rows[row].update({key + ORDER_SD: float(order_spread(value[image : image + 1])) for key, value in found.items()
                          if value.shape[1] > 1})
    for row, kinds in readouts.curves.items():
        rows[row].update({f"{kind}_curve": curve[image].tolist() for kind, curve in kinds.items()})
    return rows

