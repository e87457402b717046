"""The Walls page's three kinds of wall, each with its own readout (no Streamlit).

- **feature wall** — the paper's mechanism on the chosen model and layer (:class:`camlab.walls.FeatureWall`):
  the rest of the model cannot read the walled cells, so any CAM mass there is *leakage*. Read out:
  each CAM's leakage on the walled cells at layer resolution (the exact criterion) and on the display
  map, the change in the class probability that walling causes, and the pixel region the walled
  model provably ignores (usually far smaller than the wall, or empty: receptive fields cross it).
- **occlusion** — the pixels of each drawn region replaced (zero, mean, blur, noise): the class
  probability before and after (Drop / Increase) and each map's share inside the region. A faithful
  map puts its mass where occlusion hurts. Saliency on a visible fill is not leakage.
- **measure only** — nothing changes; each map's share inside each region: *attention share*.

The model's own unseen region (a walled model's) and its own wall — the cells of the walled layer it
never reads, pixels behind them or not — are always reported on their own, never merged with a drawn
wall.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..engine import Explanation
from ..errors import CamlabError
from ..metrics.faithfulness import probabilities
from ..metrics.leakage import l2_share, layer_region_shares, mass_share
from ..metrics.similarity import spearman
from ..render import WHITE, YELLOW, draw_outline, jpeg_bytes, labelled_grid, number_regions, outlined, overlay
from ..walls import (
    BlindModel,
    FeatureWall,
    FeatureWallAnalyser,
    UnreadCells,
    UnseenRegion,
    cell_footprint,
    check_wall,
    snap_to_cells,
)
from .state import ModelEntry, digest, explain_cached, predict

WALL_KINDS = ("feature wall", "occlusion", "measure only")


def canvas_background(entry: ModelEntry, image: torch.Tensor, default: torch.Tensor | None, pixels: int,
                      regions: Sequence[torch.Tensor] = ()) -> bytes:
    """JPEG bytes of the drawing canvas's background at ``pixels``²: the image, the model's own
    unseen region outlined in white, the stand-in ``default`` wall (if any) in yellow, and each
    drawn region's number at its centre, as the tables and overlays number them. Encoded once per
    (image, regions): a stroke reruns the canvas, and re-encoding costs more than the readouts."""
    regions = list(regions)
    with entry.lock:
        key = ("canvas-background", digest(image), digest(default), pixels, *(digest(r) for r in regions))
        slot = entry.cache.slot(key)
        if "jpeg" not in slot:
            picture = draw_outline(outlined(image, entry.unseen, WHITE), default, YELLOW)
            picture = cv2.resize(picture, (pixels, pixels), interpolation=cv2.INTER_LINEAR)
            scaled = [F.interpolate(r[None, None].float().cpu(), size=(pixels, pixels), mode="nearest")[0, 0] > 0
                      for r in regions]
            slot["jpeg"] = jpeg_bytes(number_regions(picture, scaled) if scaled else picture)
        return slot["jpeg"]


def overlays_picture(image: torch.Tensor, result: Explanation, alpha: float, unseen: torch.Tensor,
                     outline: torch.Tensor | None, columns: int = 5, regions: Sequence[torch.Tensor] = ()) -> np.ndarray:
    """Every method's display map over the image in one labelled grid (one picture for the browser
    to fetch and lay out per rerun), the model's unseen region in white, ``outline`` in yellow and
    each of ``regions`` numbered as the tables number it."""
    return labelled_grid({m: number_regions(draw_outline(overlay(image, cam.display[0], alpha, unseen, WHITE), outline,
                                                         YELLOW), list(regions))
                          for m, cam in result.maps.items()}, columns)


def _grid(entry: ModelEntry, layer: str) -> tuple[int, ...]:
    return tuple(dict(entry.layers)[layer][1:])


def walled_cells(entry: ModelEntry, layer: str, wall: torch.Tensor) -> torch.Tensor:
    """The (h, w) cells of ``layer`` a pixel wall snaps to (see :func:`camlab.walls.snap_to_cells`)."""
    return snap_to_cells(wall.cpu(), _grid(entry, layer))


@dataclass
class FeatureWallReadout:
    """What one feature wall shows: the walled model's maps (at the walled layer) and, per method,
    ``layer_leakage`` (share of the ReLU'd raw map's L2 norm on the walled cells) and
    ``display_leakage`` (the same on the display map, over the cells' pixels); the class
    probability before and after walling; the pixel region the walled model provably ignores."""

    cells: torch.Tensor
    footprint: torch.Tensor
    result: Explanation
    leakage: dict[str, dict[str, float]]
    target: int
    p_before: float
    p_after: float
    unseen: UnseenRegion

    @property
    def drop(self) -> float:
        """Average Drop's term for walling: 100 * max(0, p_before - p_after) / p_before."""
        return 100 * max(0.0, self.p_before - self.p_after) / max(self.p_before, 1e-12)

    @property
    def increase(self) -> bool:
        """Whether walling raised the class's probability (Increase in Confidence's event)."""
        return self.p_after > self.p_before


# A new wall per stroke: the structural proof is exact, and one random image (not three) confirms it
# in a third of the time; the reason shown says so.
LIVE_EVIDENCE_TRIALS = 1


def wall_analyser(entry: ModelEntry, layer: str) -> FeatureWallAnalyser:
    """The unseen-region analyser for feature walls on ``layer``, built once per model and layer
    (a float64 forward pass) so that each new wall costs one backward pass."""
    size = entry.loaded.input_size
    with entry.lock:
        slot = entry.cache.slot(("feature-wall-analyser", layer))
        if "analyser" not in slot:
            slot["analyser"] = FeatureWallAnalyser(entry.loaded.model, layer, (3, size, size), LIVE_EVIDENCE_TRIALS)
        return slot["analyser"]


@dataclass
class OwnWallReadout:
    """The cells of a layer the model itself never reads (a walled model's own wall, computed and
    verified) and, per method, the share of its ReLU'd raw map's L2 norm on them for the unwalled
    input: leakage at the layer's resolution, the exact criterion."""

    unread: UnreadCells
    leakage: dict[str, float]


def own_wall_readout(entry: ModelEntry, image: torch.Tensor, methods: list[str], layer: str) -> OwnWallReadout | None:
    """The model's own wall on ``layer`` (from the layer's analyser: no extra pass through its copy,
    cached per model and layer) and each map's leakage on it; ``None`` when the model reads every cell."""
    analyser = wall_analyser(entry, layer)
    with entry.lock:
        slot = entry.cache.slot(("unread-cells", layer))
        if "unread" not in slot:
            slot["unread"] = analyser.unread_cells(entry.loaded.model, entry.loaded.reshape)
        unread: UnreadCells = slot["unread"]
    if not unread.cells.any():
        return None
    result = explain_cached(entry, image, methods, layer)
    footprint = cell_footprint(unread.cells, tuple(image.shape[-2:])).to(image.device)
    leakage = {m: float(layer_region_shares(cam.raw, footprint)["l2"][0]) for m, cam in result.maps.items()}
    return OwnWallReadout(unread, leakage)


def feature_wall_readout(entry: ModelEntry, image: torch.Tensor, methods: list[str], layer: str,
                         wall: torch.Tensor, target: int | None = None) -> FeatureWallReadout:
    """Wall the cells of ``layer`` under ``wall`` and explain ``target`` (default: the unwalled
    model's top class) on the walled model; every part is cached per (image, layer, cells)."""
    logits = predict(entry, image)
    target = int(logits.argmax()) if target is None else target
    size = tuple(image.shape[-2:])
    cells = walled_cells(entry, layer, wall)
    variant = f"feature:{layer}:{digest(cells)}"
    analyser = wall_analyser(entry, layer)
    with entry.lock:
        slot = entry.cache.slot(("feature-wall", variant))
        if "model" not in slot:
            slot["model"] = FeatureWall(entry.loaded.model, layer, cell_footprint(cells, size),
                                        reshape=entry.loaded.reshape)
            slot["unseen"] = analyser.analyse(slot["model"])
        walled = slot["model"]
    result = explain_cached(entry, image, methods, layer, target, model=walled, variant=variant)
    footprint = cell_footprint(cells, size).to(image.device)
    leakage = {m: {"layer_leakage": float(layer_region_shares(cam.raw, footprint)["l2"][0]),
                   "display_leakage": float(l2_share(cam.display, footprint)[0])}
               for m, cam in result.maps.items()}
    p_before = float(logits.softmax(-1)[target])
    p_after = float(result.logits[0].softmax(-1)[target])
    return FeatureWallReadout(cells, footprint, result, leakage, target, p_before, p_after, slot["unseen"])


@dataclass
class OcclusionReadout:
    """Per drawn region: the class probability with the region occluded and its Drop, and per
    method the share of the (unoccluded) map's mass inside the region; with three regions or more,
    each method's rank correlation between its share and the drop across regions."""

    target: int
    p_before: float
    p_after: list[float]
    shares: dict[str, list[float]]
    correlation: dict[str, float] = field(default_factory=dict)

    @property
    def drops(self) -> list[float]:
        """Per region, 100 · max(0, p before − p after) / p before: Average Drop's term."""
        return [100 * max(0.0, self.p_before - p) / max(self.p_before, 1e-12) for p in self.p_after]

    @property
    def increases(self) -> list[float]:
        """Per region, 100 · max(0, p after − p before) / p before: occluding it made the model surer."""
        return [100 * max(0.0, p - self.p_before) / max(self.p_before, 1e-12) for p in self.p_after]


def occlusion_readout(entry: ModelEntry, image: torch.Tensor, result: Explanation, regions: list[torch.Tensor],
                      fill: str) -> OcclusionReadout:
    """Occlude each region of ``regions`` in turn and compare with ``result``'s maps. Each region's
    class probability is cached per (image, fill, region, class), so a stroke runs one batch of
    forwards for the regions it added, never for those already drawn."""
    if result.classes is None:
        raise CamlabError("occlusion readouts need the explained class")
    target = int(result.classes[0])
    size = tuple(image.shape[-2:])
    with entry.lock:
        known = entry.cache.slot(("occlusion", digest(image), fill, target))
        keys = [digest(region) for region in regions]
        missing = [(key, region) for key, region in zip(keys, regions) if key not in known]
        if missing:
            occluded = torch.stack([BlindModel(entry.loaded.model, check_wall(region, size), fill).to(image.device)
                                    .blind(image[None])[0] for _, region in missing])
            classes = torch.full((len(missing),), target, dtype=torch.long, device=image.device)
            known.update(zip([key for key, _ in missing], probabilities(entry.loaded.model, occluded, classes).tolist()))
        after = [known[key] for key in keys]
    p_before = float(predict(entry, image).softmax(-1)[target])
    shares = {m: [float(mass_share(cam.display, region.to(image.device))[0]) for region in regions]
              for m, cam in result.maps.items()}
    readout = OcclusionReadout(target, p_before, after, shares)
    if len(regions) >= 3:
        drops = torch.tensor(readout.drops)[None]
        readout.correlation = {m: float(spearman(torch.tensor(s)[None], drops)[0]) for m, s in shares.items()}
    return readout


def attention_shares(result: Explanation, regions: list[torch.Tensor]) -> dict[str, list[dict[str, float]]]:
    """Per method and region: the display map's L2 and mass share inside the region (attention, not leakage)."""
    return {m: [{"l2": float(l2_share(cam.display, region.to(cam.display.device))[0]),
                 "mass": float(mass_share(cam.display, region.to(cam.display.device))[0])} for region in regions]
            for m, cam in result.maps.items()}
