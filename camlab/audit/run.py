"""An audit: every readout of :func:`camlab.evaluation.evaluate` (one pipeline,
:func:`camlab.readouts.compute_readouts`) over the auditor's images, plus what a report needs
around it: Random-CAM as a method to beat, the wall (if any) applied as a feature wall, accuracy
per class when labels are known, the in-distribution check's warnings, and a gallery of the most
telling images with every method's overlay.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..engine import CAMEngine
from ..errors import CamlabError
from ..evaluation import Comparison, Evaluation, compare, evaluate
from ..metrics.controls import TIE_ORDERS
from ..metrics.distribution import distribution_warnings
from ..readouts import METRIC_GROUPS, MODEL_ROW, ReadoutConfig
from ..reliability import Reliability, reliability
from ..render import jpeg_bytes, overlay
from ..walls import FeatureWall, analyse_unread_cells, cell_footprint, check_wall, paper_wall, unseen_region
from .images import AuditImages, ImageSet
from .model import AuditModel

RANDOM_CAM = "randomcam"  # a map that ignores the model: every method should beat it
# Everything, sanity (on the first batch) included, but ROAD: 18 imputations per image and map would
# make a 100-image audit an hour on a CPU; ``--metrics ... road`` asks for it.
AUDIT_GROUPS = tuple(group for group in METRIC_GROUPS if group != "road")
GALLERY_PICKS = 4
SANITY_IMAGES = 8  # cascading randomisation re-explains on every layer: half of camlab-evaluate's 16 keeps audits quick


@dataclass(frozen=True)
class Wall:
    """A wall given once for the whole audit: the (H, W) pixel mask, the layer it walls as a
    feature wall, and how it was given."""

    pixels: torch.Tensor
    layer: str
    description: str


def parse_wall(text: str, size: int, layer: str) -> Wall:
    """``bottom`` (the paper's bottom 9/14), ``x0,y0,x1,y1`` (a rectangle in the model's input
    pixels, end exclusive) or a mask image's path (white = walled), at the model's input size."""
    if text == "bottom":
        return Wall(paper_wall(size), layer, "the paper's wall: the bottom 9/14 of the image")
    parts = text.split(",")
    if len(parts) == 4:
        try:
            x0, y0, x1, y1 = (int(p) for p in parts)
        except ValueError as exc:
            raise CamlabError(f"a rectangle wall is x0,y0,x1,y1 in whole pixels, got {text!r}") from exc
        if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
            raise CamlabError(f"the rectangle {text} does not lie inside the {size}x{size} input")
        pixels = torch.zeros(size, size, dtype=torch.bool)
        pixels[y0:y1, x0:x1] = True
        return Wall(check_wall(pixels, (size, size)), layer, f"the rectangle x {x0}–{x1}, y {y0}–{y1}")
    path = Path(text)
    if not path.is_file():
        raise CamlabError(f"--wall {text!r}: use bottom, x0,y0,x1,y1 or a mask image's path")
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise CamlabError(f"cannot read {path.name} as a mask image")
    mask = cv2.resize(grey, (size, size), interpolation=cv2.INTER_NEAREST) > 127
    return Wall(check_wall(torch.from_numpy(mask), (size, size)), layer, f"the mask {path.name}")


@dataclass
class GalleryImage:
    """An image the report shows with every method's overlay, and why it was picked."""

    index: int
    path: str
    why: str
    overlays: dict[str, bytes]  # method -> JPEG
    original: bytes


@dataclass
class AuditResult:
    """Everything one audit measured: the model, images, evaluation, warnings, gallery and timing."""
    model: AuditModel
    images: ImageSet
    config: ReadoutConfig
    evaluation: Evaluation
    layer: str
    device: str
    seconds: float
    wall: Wall | None = None
    walled_cells: tuple[int, int] | None = None  # (walled, total)
    region: str = ""  # what leakage was measured in
    random_cam: dict[str, list[Comparison]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    accuracy: float | None = None
    per_class: list[tuple[str, int, float]] = field(default_factory=list)
    gallery: list[GalleryImage] = field(default_factory=list)
    reliability: list[Reliability] = field(default_factory=list)  # the comparisons resampled (camlab.reliability)

    @property
    def methods(self) -> list[str]:
        """The audited methods, Random-CAM included."""
        return list(self.config.methods)


def _gallery(model: nn.Module, layer: str | None, dataset: Dataset, result_rows: dict, methods: list[str],
             region: torch.Tensor | None, paths: list[str], device: str | torch.device) -> list[GalleryImage]:
    """Up to :data:`GALLERY_PICKS` images: largest leakage, largest disagreement between methods
    (spread of insertion AUC), worst and best Average Drop (means over methods)."""
    def per_method_mean(key: str) -> torch.Tensor | None:
        found = [result_rows[m][key].float() for m in methods if key in result_rows.get(m, {})]
        return torch.stack(found).mean(0) if found else None

    picks: list[tuple[int, str]] = []

    def pick(values: torch.Tensor | None, largest: bool, why: str) -> None:
        if values is None:
            return
        order = values.argsort(descending=largest, stable=True).tolist()
        index = next((i for i in order if i not in {p for p, _ in picks}), None)
        if index is not None:
            picks.append((index, f"{why}: {float(values[index]):.3g}"))

    pick(per_method_mean("layer_leakage_l2") if region is not None else None, True,
         "largest leakage (layer L2 share, mean over methods)")
    insertion = [result_rows[m]["insertion_auc"].float() for m in methods if "insertion_auc" in result_rows.get(m, {})]
    if len(insertion) > 1:
        stacked = torch.stack(insertion)
        pick(stacked.amax(0) - stacked.amin(0), True, "largest disagreement between methods (insertion AUC spread)")
    drop = per_method_mean("average_drop")
    pick(drop, True, "worst Average Drop (mean over methods)")
    pick(drop, False, "best Average Drop (mean over methods)")
    picks = picks[:GALLERY_PICKS]
    if not picks:
        return []
    batch = [dataset[i] for i, _ in picks]
    images = torch.stack([item[0] for item in batch]).to(device)
    explanation = CAMEngine(model, layer).explain(images, methods)
    outline = region.cpu() if region is not None else None
    gallery = []
    for row, (index, why) in enumerate(picks):
        overlays = {m: jpeg_bytes(overlay(images[row], explanation[m].display[row], 0.5, outline)) for m in methods}
        original = jpeg_bytes((images[row].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8))
        gallery.append(GalleryImage(index, paths[index], why, overlays, original))
    return gallery


def run_audit(model: AuditModel, images: ImageSet, methods: list[str], *, groups: Sequence[str] = AUDIT_GROUPS,
              wall: Wall | None = None, layer: str | None = None, steps: int = 16, seed: int = 0,
              tie_orders: int = TIE_ORDERS, batch_size: int = 16, device: str | torch.device = "cpu",
              progress: bool = True, on_batch: Callable[[int, int], None] | None = None,
              unseen: torch.Tensor | None = None) -> AuditResult:
    """Audit ``model`` on ``images`` with ``methods`` (Random-CAM is added to beat). Leakage is
    measured on the ``wall``'s cells (applied as a feature wall at its layer) when one is given,
    else in the model's own unseen region when it has one (``unseen``: that region when the caller
    has already computed it, as the app has), else on its own wall — the cells of the explained layer
    it never reads (:func:`camlab.walls.analyse_unread_cells`) — when it has one. Under ``torch.distributed.run`` every process
    computes its share and gets the same result. ``tie_orders``: the random orders of tied pixels
    that AD@k and insertion/deletion average over (each costs about one more curve where maps tie)."""
    started = time.perf_counter()
    loaded = model.loaded
    methods = list(dict.fromkeys([*methods, RANDOM_CAM]))
    config = ReadoutConfig(tuple(methods), tuple(groups), steps=steps, seed=seed, sanity_images=SANITY_IMAGES,
                           tie_orders=tie_orders)
    dataset = AuditImages(images, model.preprocessing)
    size = model.preprocessing.size
    net, region, walled, where = loaded.model, None, None, ""
    explained_layer = layer or loaded.default_layer
    if wall is not None:
        walled_model = FeatureWall(loaded.model, wall.layer, wall.pixels.to(device), reshape=loaded.reshape)
        net, explained_layer = walled_model, walled_model.layer_name
        region = cell_footprint(walled_model.cells, (size, size)).to(device)
        walled = (int(walled_model.cells.sum()), walled_model.cells.numel())
        where = f"the {walled[0]} of {walled[1]} cells of {wall.layer} behind {wall.description}"
    else:
        unseen = unseen_region(loaded.model, (3, size, size)) if unseen is None else unseen.cpu()
        if unseen.any():
            region = unseen.to(device)
            where = f"the model's own unseen region ({int(unseen.sum())} pixels it provably ignores)"
        elif explained_layer is not None:  # a wall no pixel is behind: a walled ResNet's or ViT's
            own = analyse_unread_cells(loaded.model, explained_layer, (3, size, size), loaded.reshape).cells
            if own.any():
                region = cell_footprint(own, (size, size)).to(device)
                walled = (int(own.sum()), own.numel())
                where = f"the model's own wall: the {walled[0]} of {walled[1]} cells of {explained_layer} it never reads"
    if explained_layer is None:
        explained_layer = CAMEngine(net).layer_for(dataset[0][0][None].to(device))[0]
    evaluation = evaluate(net, explained_layer, dataset, config, batch_size=batch_size, region=region,
                          progress=progress, on_batch=on_batch, reshape=loaded.reshape)
    rows = evaluation.per_image
    random_cam = {}
    for method in methods:
        if method == RANDOM_CAM:
            continue
        found = [compare(key, "Random-CAM", rows[method][key], rows[RANDOM_CAM][key])
                 for key in ("average_drop@20", "insertion_auc", "deletion_auc", "road_combined")
                 if key in rows.get(method, {}) and key in rows.get(RANDOM_CAM, {})]
        if found:
            random_cam[method] = found
    warnings = distribution_warnings(evaluation.table.get(MODEL_ROW, {}))
    accuracy, per_class = None, []
    if images.labelled and evaluation.labels is not None and evaluation.classes is not None:
        labels, predicted = evaluation.labels, evaluation.classes.cpu()
        accuracy = float((labels == predicted).float().mean())
        for label in labels.unique().tolist():
            chosen = labels == label
            per_class.append((loaded.class_names[label], int(chosen.sum()),
                              float((predicted[chosen] == label).float().mean())))
    paths = [item.path for item in images.items]
    gallery = _gallery(net, explained_layer, dataset, rows, [m for m in methods if m != RANDOM_CAM] or methods,
                       region, paths, device)
    trust = reliability(evaluation, seed=seed) if evaluation.comparisons and evaluation.images > 1 else []
    seconds = time.perf_counter() - started
    return AuditResult(model, images, config, evaluation, explained_layer, str(device), seconds, wall, walled, where,
                       random_cam, warnings, accuracy, per_class, gallery, trust)


def interval(comparison: Comparison) -> str:
    """A comparison as the report writes it: difference ± half-width, ✓ or ✗."""
    if math.isinf(comparison.half_width):
        return f"{comparison.difference:+.3g} (one image: no interval) {'✓' if comparison.beats else '✗'}"
    return f"{comparison.difference:+.3g} ± {comparison.half_width:.2g} {'✓' if comparison.beats else '✗'}"
