"""Walls at initialisation on real architectures: the paper's theory setting beyond its one-layer CNN.

    camlab-table1 --at-init resnet18 resnet50 convnext_tiny vit_b_16 swin_t --seeds 16

For each architecture and seed: torchvision's network with random weights drawn from the seed (a
head torchvision starts at zero drawn at random, :func:`camlab.models.random_torchvision`), walled
with the paper's wall (the bottom 9/14 of the image) at its default layer
(:class:`camlab.walls.FeatureWall`, in the layer's own layout: a ViT's patch tokens, Swin's
channels-last grid). Nothing after that layer reads the walled cells, so every share of a map on
them is leakage. Each method explains the top class of the walled model on the sample photographs;
its leakage is the L2 share of its ReLU'd, min-max raw map on the walled cells (the layer's
resolution, the Walls page's "layer leakage"), with the controls at the same resolution: the all-zero,
all-ones (√ of the walled share) and random smooth maps, Random-CAM (random channel weights on the
model's own activations) and each method's matched control (its own values at random places).

Only methods that share the one forward and backward (or need no backward) are measured here: the
per-channel ones (Score-CAM, Ablation-CAM) cost one forward per channel, 2048 on ResNet-50's layer4.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..engine import explain
from ..errors import CamlabError
from ..maps import minmax
from ..metrics.controls import control_maps, matched_control
from ..metrics.leakage import l2_share
from ..models import DEFAULT_LAYERS, RESHAPES, random_torchvision, with_input_normalisation
from ..readouts import CONTROL_ROWS
from ..samples import PHOTOGRAPHS, photograph
from ..walls import FeatureWall, paper_wall

AT_INIT_ARCHITECTURES = ("resnet18", "resnet50", "convnext_tiny", "vit_b_16", "swin_t")
AT_INIT_METHODS = ("gradcam", "gradcam++", "xgradcam", "eigengradcam", "hirescam", "layercam", "gradcamelementwise",
                   "eigencam", "kpcacam", "fem")
RANDOM_CAM_ROW = "control: Random-CAM"
MATCHED = " (matched)"
# Elementwise methods: the gradient is exactly 0 on every walled cell, so their raw maps are 0 there.
ELEMENTWISE_METHODS = ("hirescam", "layercam", "gradcamelementwise")


def sample_photographs(size: int = 224) -> torch.Tensor:
    """Every sample photograph (:mod:`camlab.samples`) as one (N, 3, size, size) batch."""
    return torch.stack([photograph(name, size)[0] for name in PHOTOGRAPHS])


def walled_at_init(arch: str, seed: int, size: int = 224) -> FeatureWall:
    """``arch`` with random weights from ``seed``, walled with the paper's wall at its default layer."""
    options = {"image_size": size} if arch == "vit_b_16" else {}
    model = with_input_normalisation(random_torchvision(arch, seed, **options)).eval()
    return FeatureWall(model, DEFAULT_LAYERS[arch], paper_wall(size), reshape=RESHAPES.get(arch))


def seed_shares(arch: str, walled: FeatureWall, seed: int, images: torch.Tensor,
                methods: Sequence[str] = AT_INIT_METHODS) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """One seed's walled model (:func:`walled_at_init`): per row (methods, controls, matched controls)
    the leakage of each image, and per method the largest |raw value| on the walled cells (0 for
    elementwise methods, by the wall); the controls' randomness is drawn from ``seed``."""
    asked = list(dict.fromkeys([*methods, "randomcam"]))
    result = explain(walled, images, asked, target_layer=walled.layer, reshape=RESHAPES.get(arch),
                     options={"randomcam": {"seed": seed}})
    cells = walled.cells.float()
    shares, inside = {}, {}
    for method in methods:
        raw = result[method].raw
        maps = minmax(raw.clamp(min=0))
        shares[method] = l2_share(maps, cells)
        shares[method + MATCHED] = l2_share(matched_control(maps, seed), cells)
        inside[method] = float(raw.abs().amax(dim=0)[walled.cells].max())
    like = result[methods[0]].raw  # only its shape and device
    shares.update({row: l2_share(control_maps(kind, like, seed), cells) for row, kind in CONTROL_ROWS.items()})
    shares[RANDOM_CAM_ROW] = l2_share(minmax(result["randomcam"].raw.clamp(min=0)), cells)
    return shares, inside


def leakage_at_init(architectures: Sequence[str], seeds: int, images: torch.Tensor,
                    methods: Sequence[str] = AT_INIT_METHODS,
                    on_seed: Callable[[str, int, FeatureWall], object] | None = None) -> dict:
    """{architecture: {"rows": {row: (mean, std) over seeds × images}, "seed_se": {row: standard error of
    the mean over seeds (std of the per-seed means / √seeds)}, "inside": {method: largest |raw| on walled
    cells over all seeds}, "walled": share of the layer's cells walled, "grid": (h, w)}}.
    ``on_seed(architecture, seed, walled model)`` follows each seed."""
    if seeds < 1:
        raise CamlabError(f"at least one seed, got {seeds}")
    table = {}
    for arch in architectures:
        per_row: dict[str, list[torch.Tensor]] = {}
        inside: dict[str, float] = dict.fromkeys(methods, 0.0)
        walled = walled_at_init(arch, 0, images.shape[-1])
        for seed in range(seeds):
            walled = walled if seed == 0 else walled_at_init(arch, seed, images.shape[-1])
            shares, largest = seed_shares(arch, walled, seed, images, methods)
            for row, values in shares.items():
                per_row.setdefault(row, []).append(values)
            inside = {m: max(inside[m], largest[m]) for m in methods}
            if on_seed is not None:
                on_seed(arch, seed, walled)
        stacked = {row: torch.stack(values) for row, values in per_row.items()}  # (seeds, images)
        table[arch] = {
            "rows": {row: (float(v.mean()), float(v.std())) for row, v in stacked.items()},
            # images of one network are not independent draws: the error of a mean comes from the seeds
            "seed_se": {row: float(v.mean(dim=1).std() / seeds ** 0.5) if seeds > 1 else float("nan")
                        for row, v in stacked.items()},
            "inside": inside, "walled": float(walled.cells.float().mean()), "grid": tuple(walled.cells.shape),  # same every seed
        }
    return table


def to_markdown(table: dict, methods: Sequence[str] = AT_INIT_METHODS) -> str:
    """The at-initialisation leakage, one column per architecture: mean ± std over seeds × images, then
    each mean's standard error over seeds."""
    columns = list(table)
    header = "| method | " + " | ".join(columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    grids = "| walled cells | " + " | ".join(
        f"{table[a]['grid'][0]}×{table[a]['grid'][1]}, {100 * table[a]['walled']:.0f}%" for a in columns) + " |"
    rows = (*methods, *CONTROL_ROWS, RANDOM_CAM_ROW, *(m + MATCHED for m in methods))
    lines = [header, rule, grids]
    for row in rows:
        cells = [f"{table[a]['rows'][row][0]:.3f} ± {table[a]['rows'][row][1]:.3f}" for a in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines += ["", "Standard error of each mean over seeds (std of the per-seed means / √seeds):", "", header, rule]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(f"{table[a]['seed_se'][row]:.4f}" for a in columns) + " |")
    return "\n".join(lines)
