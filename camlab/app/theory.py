"""The Theory page's computations beyond the paper's one-layer model: torchvision architectures with
random weights, walled at their default layer (:mod:`camlab.study.at_init`), bounded for a visitor
(no Streamlit)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from ..engine import explain
from ..errors import CamlabError
from ..models import RESHAPES
from ..study.at_init import AT_INIT_ARCHITECTURES, AT_INIT_METHODS, leakage_at_init, sample_photographs
from ..walls import FeatureWall

LIVE_SEEDS = 8  # at most this many initialisations per request: 27 s for vit_b_16 on a 2-core CPU
EXAMPLE_METHODS = ("gradcam", "hirescam")
_ONE_AT_A_TIME = threading.Lock()  # each study builds its own networks: one on the server at a time bounds the work


@dataclass
class InitWallsView:
    """One architecture at initialisation: per method and control the leakage (mean, std over seeds ×
    the sample photographs), the walled layer's grid and how many of its bottom rows are walled, and
    the first seed's ReLU'd raw maps of :data:`EXAMPLE_METHODS` on the first photograph."""

    rows: dict[str, tuple[float, float]]
    grid: tuple[int, int]
    walled_rows: int
    samples: int
    examples: dict[str, torch.Tensor]


def init_walls_view(arch: str, seeds: int) -> InitWallsView:
    """The view of ``arch`` over ``seeds`` random initialisations (1 to :data:`LIVE_SEEDS`)."""
    if arch not in AT_INIT_ARCHITECTURES:
        raise CamlabError(f"unknown architecture {arch!r}; choose one of {', '.join(AT_INIT_ARCHITECTURES)}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= LIVE_SEEDS:
        raise CamlabError(f"between 1 and {LIVE_SEEDS} initialisations here, got {seeds!r}; "
                          "`camlab-table1 --at-init` runs more")
    images = sample_photographs()
    first: list[FeatureWall] = []  # the first draw, kept for its example maps rather than built again
    with _ONE_AT_A_TIME:
        column = leakage_at_init([arch], seeds, images, AT_INIT_METHODS,
                                 on_seed=lambda _arch, seed, walled: first.append(walled) if seed == 0 else None)[arch]
        walled = first[0]
        result = explain(walled, images[:1], list(EXAMPLE_METHODS), target_layer=walled.layer,
                         reshape=RESHAPES.get(arch))
    return InitWallsView(column["rows"], column["grid"], int(walled.cells.any(dim=1).sum()), seeds * len(images),
                         {m: result[m].raw[0].clamp(min=0) for m in EXAMPLE_METHODS})
