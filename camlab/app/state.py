"""The app's shared state: one entry per loaded model with its lock and result cache, and the cached
computations every page reads. Plain Python and tensors (no Streamlit), so tests need no browser.

A model is shared by every session of the server, and hooks mutate it while a CAM is computed, so
each entry has a lock: everything that runs the model goes through a function here that takes it.
Slow methods (Score-CAM, Ablation-CAM: one forward per channel) run on the entry's own copy of the
model under a second lock, and step aside between chunks while anyone holds or waits for the first,
so one visitor's slow method never stalls other visitors' views of the same model.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import Dataset

from ..checks import whole_number
from ..engine import CAMEngine, CAMMap, Explanation
from ..errors import CamlabError
from ..evaluation import Evaluation, dataset_length, evaluate
from ..export import model_identity, tensor_sha256
from ..layers import resolve_layer, spatial_layers
from ..maps import magnitude_map
from ..metrics.catalog import words
from ..metrics.leakage import region_shares
from ..metrics.similarity import gradient_distance
from ..models import LoadedModel, check_class_names
from ..modes import eval_mode
from ..readouts import CONTROL_ROWS, ReadoutConfig, compute_readouts, merged_rows
from ..registry import get_method
from ..reliability import reliability, reliability_rows
from ..study.train import short_run
from ..study.wallvgg import WallVGG
from ..walls import unseen_region


def digest(tensor: torch.Tensor | None) -> str:
    """A short content hash, the cache key for an image or a wall."""
    if tensor is None:
        return "-"
    return tensor_sha256(tensor)[:16]


class ResultCache:
    """Least-recently-used results per (image, model variant, layer, target): switching views or
    adding a method reuses what was computed; only missing methods run."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple, dict] = OrderedDict()

    def slot(self, key: tuple) -> dict:
        """The entry for ``key`` (created empty), marked most recently used."""
        entry = self._entries.pop(key, None)
        if entry is None:
            entry = {"maps": {}, "readouts": {}}
        self._entries[key] = entry
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)


class YieldingLock:
    """A lock that knows whether anyone holds it or waits for it, so slow work elsewhere can wait
    for a quiet moment (:meth:`wait_quiet`) before each of its chunks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0  # holding or waiting
        self._changed = threading.Condition()
        self._last_use = 0.0

    def __enter__(self) -> YieldingLock:
        with self._changed:
            self._users += 1
        self._lock.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
        with self._changed:
            self._users -= 1
            self._last_use = time.monotonic()
            self._changed.notify_all()

    def wait_quiet(self, quiet: float, longest: float) -> None:
        """Return once nobody has held or waited for the lock for ``quiet`` seconds (the pieces of
        one page render come in quick succession), or after ``longest`` seconds whatever happens,
        so slow work is never starved."""
        deadline = time.monotonic() + longest
        with self._changed:
            while (now := time.monotonic()) < deadline:
                if self._users:
                    self._changed.wait(deadline - now)
                elif now - self._last_use < quiet:
                    self._changed.wait(min(quiet - (now - self._last_use), deadline - now))
                else:
                    return


# Slow methods in the app: chunks small enough that a chunk already running delays another visitor's
# view only a little, and the pauses between them.
SLOW_CHUNK = 8
QUIET_SECONDS = 0.25
LONGEST_PAUSE_SECONDS = 2.0


@dataclass
class SlowLane:
    """Where a model entry's slow methods run: a copy of its model, made on first use, one slow
    computation at a time under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    model: nn.Module | None = None


@dataclass
class ModelEntry:
    """A loaded model as the app shares it: its unseen region and spatial layers (computed once at
    load), the lock every computation on it takes, its result cache, and its slow lane (entries
    made from it with :func:`dataclasses.replace` share all three)."""

    loaded: LoadedModel
    unseen: torch.Tensor  # (H, W) bool: pixels the output provably ignores; all False if none
    lock: YieldingLock
    key: str
    layers: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # spatial layers, dry run
    cache: ResultCache = field(default_factory=ResultCache)
    slow: SlowLane = field(default_factory=SlowLane)


def model_entry(loaded: LoadedModel, key: str, device: str | torch.device) -> ModelEntry:
    """Wrap a loaded model for the app: unseen region and layer list computed once, an empty cache.
    Models that cannot be explained (wrong input, no spatial layer, TorchScript) are refused here."""
    size = loaded.input_size
    model = loaded.model.to(device)
    blank = torch.zeros(1, 3, size, size, device=device)
    layers = spatial_layers(model, blank, loaded.reshape)  # a model that cannot run on such an image fails here
    unseen = unseen_region(model, (3, size, size)).to(device)
    if not layers:
        raise CamlabError(f"{loaded.name} has no layer with a spatial (C, H, W) output, so no CAM applies")
    # The first backward pays one-off kernel set-up (~0.6 s on CPU); pay it while loading.
    CAMEngine(model, loaded.default_layer or layers[-1][0], reshape=loaded.reshape).explain(blank, ["gradcam"])
    return ModelEntry(loaded, unseen, YieldingLock(), key, layers)


def model_record(entry: ModelEntry) -> dict:
    """The entry's :func:`camlab.export.model_identity` (its weights hashed once per entry)."""
    with entry.lock:
        slot = entry.cache.slot(("model-identity",))
        if "identity" not in slot:
            loaded = entry.loaded
            slot["identity"] = model_identity(loaded.model, loaded.name, loaded.architecture, loaded.card)
        return slot["identity"]


MAX_CLASS_LIST_CHARS = 2_000_000  # 100,000 names of 20 characters


def with_class_names(entry: ModelEntry, text: str) -> ModelEntry:
    """The entry with the class names a visitor gives: one per line, or a JSON list, in the model's
    output order, as many as it has outputs. The model, its lock and its cache stay shared (names
    change no result)."""
    if len(text) > MAX_CLASS_LIST_CHARS:
        raise CamlabError(f"the class list is {len(text):,} characters; the limit is {MAX_CLASS_LIST_CHARS:,}")
    stripped = text.strip()
    try:
        names = json.loads(stripped) if stripped.startswith("[") else [line.strip() for line in stripped.splitlines()]
    except json.JSONDecodeError as exc:
        raise CamlabError(f"the class list starts like JSON but is not a JSON list ({exc.msg}, line {exc.lineno})") from exc
    names = [name for name in names if name != ""] if isinstance(names, list) else names
    outputs = len(entry.loaded.class_names)
    if not isinstance(names, list) or len(names) != outputs:
        count = len(names) if isinstance(names, list) else type(names).__name__
        raise CamlabError(f"the model has {outputs} outputs, and the class list gives {count} names")
    check_class_names(names, "the class list")
    return dataclasses.replace(entry, loaded=dataclasses.replace(entry.loaded, class_names=list(names)))


def default_layer(entry: ModelEntry) -> str:
    """The layer CAMs read unless the user picks another: the model's own default, else the last
    spatial layer."""
    return entry.loaded.default_layer or entry.layers[-1][0]


MAX_LAYER_NAME_CHARS = 200
_LAYER_NAME = re.compile(r"[A-Za-z0-9_.]+")


def check_layer(entry: ModelEntry, layer: str) -> str:
    """The layer name if the model has it and it gives a spatial map; else a clear error. A typed
    name is checked for length and characters first (suggesting close names costs time in its length)."""
    if not isinstance(layer, str) or len(layer) > MAX_LAYER_NAME_CHARS or not _LAYER_NAME.fullmatch(layer):
        raise CamlabError(f"a layer name is a dotted module name (letters, digits, '_' and '.', at most "
                          f"{MAX_LAYER_NAME_CHARS} characters), e.g. {default_layer(entry)}")
    name, _ = resolve_layer(entry.loaded.model, layer)  # unknown names raise with suggestions
    if name not in {n for n, _ in entry.layers}:
        raise CamlabError(f"layer {name!r} does not output a spatial (C, H, W) map once per forward; "
                          f"pick one of the listed layers")
    return name


def widget_key(entry: ModelEntry, image: torch.Tensor) -> str:
    """A key for widgets whose state belongs to one (model, image), e.g. the walls drawn on it."""
    return f"{entry.key}-{digest(image)}"


def top_classes(logits: torch.Tensor, class_names: list[str], k: int = 5) -> list[tuple[int, str, float]]:
    """(index, name, probability) of the k most probable classes of one image's logits."""
    probabilities = logits.softmax(-1).flatten()
    values, indices = probabilities.topk(min(k, probabilities.numel()))
    return [(int(i), class_names[int(i)], float(p)) for p, i in zip(values.tolist(), indices.tolist())]


# grad-cam's two smoothings, which the Explore page offers for every method that takes them
SMOOTHINGS = ("eigen_smooth", "aug_smooth")


# How the sampled methods name their number of passes (SmoothGrad, SS-CAM, IS-CAM: samples; IG: steps).
PASS_OPTIONS = ("samples", "steps")
MAX_SAMPLES = 64  # per image, and per channel for SS-CAM / IS-CAM: 64 x 2048 forwards on resnet50's layer4
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class MethodSettings:
    """What the Explore page sets for every chosen method that takes it: grad-cam's ``smoothing`` (of
    :data:`SMOOTHINGS`), the sampled methods' number of ``samples`` (or integration steps; None: each
    method's own default) and the ``seed`` of every method that draws random numbers. Hashable: a view's
    cache key holds it."""

    smoothing: tuple[str, ...] = ()
    samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.smoothing) - set(SMOOTHINGS))
        if unknown:
            raise CamlabError(f"unknown smoothing {', '.join(map(repr, unknown))}; choose from {', '.join(SMOOTHINGS)}")
        object.__setattr__(self, "smoothing", tuple(sorted(set(self.smoothing))))  # one key per choice, any order
        if self.samples is not None:
            whole_number("samples", self.samples, 1, MAX_SAMPLES)
        whole_number("seed", self.seed, 0, MAX_SEED)

    def options(self, methods: list[str]) -> dict[str, dict[str, object]]:
        """The engine's options for ``methods``: each setting for the methods that take it."""
        options: dict[str, dict[str, object]] = {}
        for method in methods:
            accepted = get_method(method).options
            chosen: dict[str, object] = {o: True for o in self.smoothing if o in accepted}
            if self.samples is not None:
                chosen.update({o: self.samples for o in PASS_OPTIONS if o in accepted})
            if "seed" in accepted:
                chosen["seed"] = self.seed
            if chosen:
                options[method] = chosen
        return options


def _view_key(entry: ModelEntry, image: torch.Tensor, layer: str | None, target: int | None,
              variant: str = "", settings: MethodSettings = MethodSettings()) -> tuple:
    return digest(image), variant, layer or default_layer(entry), target, settings


def predict(entry: ModelEntry, image: torch.Tensor) -> torch.Tensor:
    """Logits (classes,) for one image, cached: the class picker needs them before any map."""
    with entry.lock:
        slot = entry.cache.slot((digest(image), "logits"))
        if "logits" not in slot:
            with eval_mode(entry.loaded.model), torch.inference_mode():
                slot["logits"] = entry.loaded.model(image[None])[0]
        return slot["logits"]


def cached_methods(entry: ModelEntry, image: torch.Tensor, layer: str | None = None,
                   target: int | None = None, settings: MethodSettings = MethodSettings()) -> set[str]:
    """Methods already computed for this view (the UI computes slow ones only on request)."""
    with entry.lock:
        return set(entry.cache.slot(_view_key(entry, image, layer, target, settings=settings))["maps"])


def explain_cached(entry: ModelEntry, image: torch.Tensor, methods: list[str], layer: str | None = None,
                   target: int | None = None, model: nn.Module | None = None,
                   variant: str = "", on_progress: Callable[[int, int], None] | None = None,
                   settings: MethodSettings = MethodSettings()) -> Explanation:
    """Explain one image (3, H, W), computing only the methods not cached for this
    (image, variant, layer, target, settings); each of ``settings`` applies to every method that
    takes it. ``variant`` names a wrapper ``model`` around the entry's model
    (e.g. an occluded one); CAMs then read the same layer module inside the wrapper.
    ``shared_seconds`` is this call's shared pass (0 when everything was cached); each map keeps
    the shared pass of the call that computed it. Slow methods on the entry's own model run on its
    slow lane (:func:`explain_slow`), reporting ``on_progress(done, total)`` after each chunk."""
    slow = [method for method in methods if get_method(method).slow]  # unknown names fail before any work
    key = _view_key(entry, image, layer, target, variant, settings)
    _, module = resolve_layer(entry.loaded.model, key[2])
    if slow and model is None:
        explain_slow(entry, image, slow, key, target, on_progress)
    with entry.lock:
        slot = entry.cache.slot(key)
        missing = [m for m in methods if m not in slot["maps"]]
        shared_seconds = 0.0
        if missing or "logits" not in slot:
            engine = CAMEngine(model or entry.loaded.model, module, reshape=entry.loaded.reshape)
            computed = missing or methods[:1]
            result = engine.explain(image[None], computed, target, key[4].options(computed))
            slot.update(logits=result.logits, classes=result.classes)
            slot["maps"].update({m: result[m] for m in missing})
            shared_seconds = result.shared_seconds
        maps: dict[str, CAMMap] = {m: slot["maps"][m] for m in methods}
        return Explanation(maps=maps, logits=slot["logits"], classes=slot["classes"], layer=key[2],
                           shared_seconds=shared_seconds)


def slow_model(entry: ModelEntry) -> nn.Module:
    """The entry's own copy of its model for long work (slow methods, audits), made on first use;
    run it under ``entry.slow.lock``."""
    with entry.lock:  # copied while no computation has hooks on the shared model
        if entry.slow.model is None:
            entry.slow.model = copy.deepcopy(entry.loaded.model)
        return entry.slow.model


def explain_slow(entry: ModelEntry, image: torch.Tensor, methods: list[str], key: tuple, target: int | None,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
    """Compute the slow ``methods`` missing from the cache slot ``key`` on the entry's copy of its
    model, one slow computation per model at a time; between chunks it reports progress, then waits
    for a quiet moment on the entry's lock, so other visitors' views of the model go first. Results
    land in the same cache as :func:`explain_cached`'s."""

    def missing() -> list[str]:
        with entry.lock:
            return [m for m in methods if m not in entry.cache.slot(key)["maps"]]

    def step(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(done, total)
        entry.lock.wait_quiet(QUIET_SECONDS, LONGEST_PAUSE_SECONDS)

    if not missing():
        return
    with entry.slow.lock:
        todo = missing()  # another visitor may have computed them while this one waited
        if not todo:
            return
        model = slow_model(entry)
        _, module = resolve_layer(model, key[2])
        engine = CAMEngine(model, module, chunk_size=SLOW_CHUNK, reshape=entry.loaded.reshape, on_chunk=step)
        result = engine.explain(image[None], todo, target, key[4].options(todo))
    with entry.lock:
        slot = entry.cache.slot(key)
        slot.setdefault("logits", result.logits)
        slot.setdefault("classes", result.classes)
        slot["maps"].update({m: result[m] for m in todo})


READOUT_COVERAGES = (10, 20)
SATURATION_TOLERANCE = 1.0  # Average Drop points: closer than this to the all-zero map is "no better"


def faithfulness(model: nn.Module, image: torch.Tensor, result: Explanation, class_names: list[str] | None = None,
                 steps: int = 16, region: torch.Tensor | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """The readouts of :func:`camlab.readouts.compute_readouts` for one image (3, H, W) and the maps
    of ``result`` (one image, its explained class): per method and control, Average Drop / Increase
    in Confidence / Average Gain and the matched control's (``*_matched``), Average Drop at 10% and
    20% coverage, insertion and deletion AUC and curves, leakage inside ``region`` when it has
    pixels; and per method ``notes``: why a readout cannot be trusted here (every map-masked image,
    controls included, collapses to one class, or the method is within
    :data:`SATURATION_TOLERANCE` of the all-zero map)."""
    groups = ("leakage", "confidence", "coverage", "insdel")
    config = ReadoutConfig(tuple(result.maps), groups, coverages=READOUT_COVERAGES, steps=steps)
    found = compute_readouts(model, image[None], config, explanation=result,
                             region=region if region is not None and bool(region.any()) else None,
                             on_progress=on_progress)
    table = merged_rows(found)
    masked_classes = {int(row["masked_class"][0]) for row in found.values.values() if "masked_class" in row}
    collapsed = None
    if len(masked_classes) == 1:
        only = masked_classes.pop()
        collapsed = (f"every masked image, controls included, is classified as "
                     f"{class_names[only] if class_names else only}: Drop/Increase describe the model here, not the map")
    zero_drop = table["control: all-zero"]["average_drop"]
    for name in result.maps:
        notes = table[name]["notes"] = [collapsed] if collapsed else []
        if abs(table[name]["average_drop"] - zero_drop) < SATURATION_TOLERANCE:
            notes.append(f"Average Drop {table[name]['average_drop']:.1f} is within {SATURATION_TOLERANCE:g} of the "
                         f"all-zero map's {zero_drop:.1f}: no better than showing nothing")
    return table


def region_rows(result: Explanation, region: torch.Tensor, prefix: str = "leakage_") -> dict[str, dict[str, float]]:
    """Per method, the display map's shares inside ``region`` (keys ``<prefix><share>``)."""
    return {m: {f"{prefix}{k}": float(v[0]) for k, v in region_shares(cam.display, region).items()}
            for m, cam in result.maps.items()}


def readouts_cached(entry: ModelEntry, image: torch.Tensor, result: Explanation, target: int | None = None,
                    region: torch.Tensor | None = None, steps: int = 16, layer: str | None = None,
                    on_progress: Callable[[int, int], None] | None = None,
                    settings: MethodSettings = MethodSettings()) -> dict[str, dict]:
    """:func:`faithfulness` for the explained class, leakage inside ``region`` (when it has
    pixels), cached beside the maps; ``image``, ``target``, ``layer`` and ``settings`` as given to
    :func:`explain_cached` for ``result``. Only methods not cached with these settings run (the
    controls are recomputed with them: they depend on the image only)."""
    with entry.lock:
        readouts = entry.cache.slot(_view_key(entry, image, layer, target, settings=settings))["readouts"]
        ask = (steps, digest(region))
        missing = [m for m in result if (m, *ask) not in readouts]
        if missing:
            subset = dataclasses.replace(result, maps={m: result[m] for m in missing})
            rows = faithfulness(entry.loaded.model, image, subset, entry.loaded.class_names, steps, region, on_progress)
            for row, values in rows.items():
                readouts[(row, *ask)] = values
        return {m: readouts[(m, *ask)] for m in [*result, *CONTROL_ROWS]}


def scalar_readouts(readouts: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The numbers of each readout row (curves and notes left out), rounded for a table."""
    return {row: {k: round(v, 4) for k, v in values.items() if isinstance(v, float)} for row, values in readouts.items()}


def readouts_table(readouts: dict[str, dict]) -> dict[str, dict[str, float]]:
    """:func:`scalar_readouts` with readouts named in words, one column per method and control."""
    return {row: {words(k): v for k, v in values.items()} for row, values in scalar_readouts(readouts).items()}


def image_verdicts(readouts: dict[str, dict]) -> dict[str, list[tuple[str, bool]]]:
    """Per method, on this one image: does it beat its matched control at Average Drop, and the
    random smooth map at Average Drop on its top 20%, insertion and deletion? (One image: a
    difference, not an interval; the Benchmark page gives intervals over many.)"""
    random = readouts.get("control: random", {})
    checks = (("AD vs its matched control", "average_drop", "average_drop_matched", True),
              ("AD@20% vs random map", "average_drop@20", None, True),
              ("insertion vs random map", "insertion_auc", None, False),
              ("deletion vs random map", "deletion_auc", None, True))
    verdicts = {}
    for method, row in readouts.items():
        if method.startswith("control:"):
            continue
        found = []
        for label, key, control_key, lower in checks:
            control = row.get(control_key) if control_key else random.get(key)
            if key in row and control is not None:
                found.append((label, row[key] < control if lower else row[key] > control))
        verdicts[method] = found
    return verdicts


def gradient_agreement(result: Explanation) -> float:
    """1 - cosine similarity of the vanilla and guided-backprop input gradients (the quantity the
    guided-gradient regulariser lowers); needs both methods in ``result``."""
    return float(gradient_distance(result["gradient"].raw, result["guided_backprop"].raw))


MAX_ROAD_IMAGES = 32  # ROAD solves 18 imputations per image and map: ~1 s per image and method on 2 CPU cores


def run_evaluation(entry: ModelEntry, dataset: Dataset, methods: list[str], groups: tuple[str, ...], steps: int,
                   on_batch: Callable[[int, int], None] | None = None) -> Evaluation:
    """:func:`camlab.evaluation.evaluate` on the entry's model, leakage in its unseen region; the
    road group on at most :data:`MAX_ROAD_IMAGES` images (``camlab-evaluate`` takes more)."""
    if "road" in groups and dataset_length(dataset) > MAX_ROAD_IMAGES:
        raise CamlabError(f"ROAD runs on at most {MAX_ROAD_IMAGES} images on this page (18 imputations per image "
                          f"and method); pick fewer images, or run camlab-evaluate --metrics road")
    region = entry.unseen if entry.unseen.any() else None
    with entry.lock:
        return evaluate(entry.loaded.model, default_layer(entry), dataset, ReadoutConfig(tuple(methods), groups, steps=steps),
                        batch_size=8, reshape=entry.loaded.reshape, region=region, progress=False, on_batch=on_batch)


def evaluation_reliability(outcome: Evaluation) -> tuple[list[str], list[list]]:
    """The Benchmark page's table of :func:`camlab.reliability.reliability`: per metric and control,
    each method's share of resamples in which it beats the control (empty without comparisons)."""
    if not outcome.comparisons or outcome.images < 2:
        return [], []
    return reliability_rows(reliability(outcome))


def fine_tune(entry: ModelEntry, steps: int, weight: float, lr: float, device: str | torch.device,
              on_step: Callable[[int, int, dict], None] | None = None) -> tuple[ModelEntry, dict]:
    """Fine-tune a copy of the entry's model for ``steps`` steps with the guided-gradient
    regulariser of weight ``weight`` (:func:`camlab.study.train.short_run`), and wrap the copy as a
    new entry; the report has the before/after accuracy and gradient distance."""
    if not isinstance(entry.loaded.model, WallVGG):
        raise CamlabError(f"fine-tuning is for camlab's walled VGGs; {entry.loaded.name} is a {entry.loaded.architecture}")
    with entry.lock:
        run = short_run(entry.loaded.model, steps, weight, lr=lr, on_step=on_step)
    name = f"{entry.loaded.name}+{steps}steps-λ{weight}"
    loaded = dataclasses.replace(entry.loaded, model=run.pop("model"), name=name, card={})
    return model_entry(loaded, name, device), run


def heatmaps(result: Explanation, shared_scale: bool) -> tuple[dict[str, torch.Tensor], float | None]:
    """The (H, W) map each method shows and the top of the colour range: per map, the min-max
    display maps on [0, 1] (None: each figure fits its own range); shared, each map in its method's
    own units (:func:`camlab.maps.magnitude_map`) on one range up to the largest value."""
    if not shared_scale:
        return {m: cam.display[0] for m, cam in result.maps.items()}, None
    size = tuple(next(iter(result.maps.values())).display.shape[-2:])
    heat = {m: magnitude_map(cam.raw, size, get_method(m).pixel_space)[0] for m, cam in result.maps.items()}
    return heat, max(float(h.max()) for h in heat.values())
