"""Reproduce Table 1 of "CAM-based methods can see through walls" on camlab's own models and data.

    camlab-table1 --images 100
    camlab-table1 --methods all       # also the sampled methods (an hour or more on a small CPU)
    camlab-table1 --at-init resnet18 vit_b_16 --seeds 16   # random-weight architectures, walled
    camlab-table1 --models params_vgg16_masked.pt params_vgg16_baseline.pt --data stackmix:imagenet/val --region paper
                                      # the authors' weights on STACK-MIX from your ImageNet photographs
    camlab-table1 --region cells --models models/masked_resnet.pt models/baseline_resnet.pt
                                      # the walled cells of the layer, for walls no pixel is behind


For each method, model and dataset: mean and standard deviation over images of the leakage
||S in the unseen region||_2 / ||S||_2, S the display map (CAMs: ReLU, upsampled, min-max; pixel
attributions: largest magnitude over colours, min-max). The unseen
region is the masked model's, as computed by ``camlab.walls.unseen_region``; the unwalled baseline
is measured on the same band for comparison.

``--region cells`` measures at the layer instead: the L2 share of each CAM's ReLU'd, min-max raw map
on the cells of the layer the walled model's output provably never reads, computed and verified by
``camlab.walls.analyse_unread_cells`` (the Walls page's "layer leakage", :mod:`camlab.study.at_init`'s
measure). It is the measure for walled ResNets
and ViTs, whose last layers see the whole image (no unseen pixel), and it applies to the walled VGG
too; methods without a layer-resolution map (the pixel attributions, FullGrad) have no row there.

Beside the methods, what maps that know nothing of the model score in the same band: the all-zero,
all-ones and random smooth controls, Random-CAM (random channel weights on the model's own
activations), and each method's matched control (its own values at random smooth places, so the same
coverage and histogram). On the walled model every share above 0 is leakage; the controls say whether a
method paints the band more or less than a map placed without looking at the model.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..engine import CAMEngine
from ..errors import CamlabError
from ..maps import minmax
from ..metrics.controls import control_maps, matched_control
from ..metrics.leakage import l2_share
from ..models import LoadedModel
from ..readouts import CONTROL_ROWS
from ..walls import UnreadCells, analyse_unread_cells, unseen_region
from .at_init import AT_INIT_ARCHITECTURES, ELEMENTWISE_METHODS, leakage_at_init, sample_photographs
from .at_init import to_markdown as at_init_markdown
from .data import StackedDataset
from .stackmix import STACK_MIX, StackMix
from .wallvgg import load_checkpoint

TABLE_METHODS = ("gradcam", "hirescam", "scorecam", "gradcam++", "ablationcam", "xgradcam", "eigencam", "layercam",
                 "gradcamelementwise", "eigengradcam", "fem", "kpcacam", "shapleycam", "finercam", "fullgrad",
                 "gradient", "guided_backprop", "refinecam")
# The methods whose maps are at the layer's resolution: --region cells measures these.
PIXEL_RESOLUTION_METHODS = ("fullgrad", "gradient", "guided_backprop", "refinecam")
LAYER_MAP_METHODS = tuple(m for m in TABLE_METHODS if m not in PIXEL_RESOLUTION_METHODS)
# Rows of README's table measured with --methods: one forward (and backward) per sample or channel
# each, too slow for the default run (and its test) on a CPU.
SAMPLED_METHODS = ("smoothgradcam++", "iscam", "sscam", "integrated_gradients", "smoothgrad")
RANDOM_CAM_ROW = "control: Random-CAM"
CONTROL_TABLE_ROWS = (*CONTROL_ROWS, RANDOM_CAM_ROW)
MATCHED = " (matched)"
PAPER_BAND_ROWS = 54  # the paper's metric: ||S on the bottom 54 of 224 rows||_2 / ||S||_2
REGIONS = ("computed", "paper", "cells")


def _batch_shares(engine: CAMEngine, batch: torch.Tensor, first_index: int, methods: Sequence[str],
                  region: torch.Tensor, at_cells: bool = False) -> dict[str, torch.Tensor]:
    """Each method's, control's and matched control's share of the band on one batch; the controls'
    randomness is seeded by the batch's first image index, as the readouts seed theirs. ``at_cells``:
    ``region`` is the layer's grid, measured on ReLU'd, min-max raw maps; methods with maps of another
    resolution are left out."""
    asked = list(dict.fromkeys([*methods, "randomcam"]))
    options = {"randomcam": {"seed": first_index}}  # fresh random weights per batch, not one draw reused
    result = engine.explain(batch, asked, options=options)

    def measured(method: str) -> torch.Tensor:
        return minmax(result[method].raw.clamp(min=0)) if at_cells else result[method].display

    maps = {m: measured(m) for m in methods if not at_cells or result[m].raw.shape[-2:] == region.shape}
    if not maps:
        raise CamlabError(f"none of {', '.join(methods)} has a map at the layer's {tuple(region.shape)} grid")
    like = next(iter(maps.values()))
    shares = {m: l2_share(display, region) for m, display in maps.items()}
    shares.update({m + MATCHED: l2_share(matched_control(display, first_index), region) for m, display in maps.items()})
    shares.update({row: l2_share(control_maps(kind, like, first_index), region) for row, kind in CONTROL_ROWS.items()})
    shares[RANDOM_CAM_ROW] = l2_share(measured("randomcam"), region)
    return shares


def unread_cells(entry: LoadedModel) -> UnreadCells:
    """The cells of ``entry``'s default layer its output provably never reads (its own wall), as
    :func:`camlab.walls.analyse_unread_cells` finds and verifies them."""
    if entry.default_layer is None:
        raise SystemExit(f"{entry.name} names no default layer whose cells could be walled")
    size = entry.input_size
    return analyse_unread_cells(entry.model, entry.default_layer, (3, size, size), entry.reshape)


def cell_regions(loaded: Sequence[LoadedModel]) -> list[torch.Tensor]:
    """Per model, the layer cells ``--region cells`` measures: its own unread cells, or for an unwalled
    twin those of the walled model listed last before it."""
    regions: list[torch.Tensor] = []
    for entry in loaded:
        own = unread_cells(entry)
        if own.cells.any():
            regions.append(own.cells)
        elif not regions:
            raise SystemExit(f"{entry.name}: {own.reason}, so it has no wall to measure; list the walled model first")
        elif own.cells.numel() and own.cells.shape != regions[-1].shape:
            raise SystemExit(f"{entry.name}'s layer {entry.default_layer} is a {own.cells.shape[0]}x{own.cells.shape[1]} "
                             f"grid, its walled model's {regions[-1].shape[0]}x{regions[-1].shape[1]}: list each twin "
                             "after its walled model")
        else:
            regions.append(regions[-1])
    return regions


def paper_band(size: int) -> torch.Tensor:
    """(size, size) bool: the paper's region for its metric, the bottom 54 of 224 rows (scaled to ``size``)."""
    band = torch.zeros(size, size, dtype=torch.bool)
    band[size - round(size * PAPER_BAND_ROWS / 224) :] = True
    return band


def data_name(spec: str) -> str:
    """A ``--data`` value's column name: a generated set's own, ``stackmix:<folder's name>`` for a folder."""
    return f"{STACK_MIX}{Path(spec[len(STACK_MIX):]).name}" if spec.startswith(STACK_MIX) else spec


def table_data(spec: str, size: int, images: int) -> tuple[str, Dataset]:
    """A ``--data`` value's column name and images: a generated set's test split, or ``stackmix:<folder>``."""
    if spec.startswith(STACK_MIX):
        return data_name(spec), StackMix(spec[len(STACK_MIX):], length=images, size=size)
    return spec, StackedDataset(spec, "test", size=size, length=images)


def leakage_table(model_paths: Sequence[str], datasets: Sequence[str], images: int, batch_size: int = 16,
                  methods: Sequence[str] = TABLE_METHODS, progress: bool = True, region: str = "computed") -> dict:
    """{(model, dataset): {row: (mean, std)}} in the unseen region of the first (walled) model (``region=
    "computed"``), in the paper's bottom 54 rows (``"paper"``, its own metric) or on the layer cells
    its output never reads (``"cells"``, :func:`unread_cells`); rows: the methods, ``CONTROL_TABLE_ROWS``
    and each method's ``"<method> (matched)"``. With ``"cells"`` each walled model sets the cells for
    itself and the unwalled twins listed after it (``masked_resnet baseline_resnet masked_vit ...``)."""
    if region not in REGIONS:  # before loading models and analysing their region
        raise SystemExit(f"--region is one of {', '.join(REGIONS)}, got {region!r}")
    names = [data_name(spec) for spec in datasets]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SystemExit(f"two --data sets would share the column {', '.join(repeated)}: give the folders different names")
    loaded = [load_checkpoint(p) for p in model_paths]
    size = loaded[0].input_size
    if region == "cells":
        regions = cell_regions(loaded)
    else:
        unseen = unseen_region(loaded[0].model, (3, size, size))
        if not unseen.any():
            raise SystemExit(f"{loaded[0].name} has no unseen region (its last layer sees the whole image); measure "
                             "its walled layer cells with --region cells, or list the walled model first")
        regions = [paper_band(size) if region == "paper" else unseen] * len(loaded)
    table = {}
    for entry, measured in zip(loaded, regions):
        engine = CAMEngine(entry.model, entry.default_layer)
        for dataset in datasets:
            ratios: dict[str, list[torch.Tensor]] = {}
            name, data = table_data(dataset, size, images)
            loader = DataLoader(data, batch_size=batch_size)
            for index, (batch, _) in enumerate(tqdm(loader, desc=f"{entry.name} on {name}", disable=not progress)):
                shares_by_row = _batch_shares(engine, batch, index * batch_size, methods, measured, region == "cells")
                for row, shares in shares_by_row.items():
                    ratios.setdefault(row, []).append(shares)
            table[(entry.name, name)] = {
                row: (float(torch.cat(r).mean()), float(torch.cat(r).std())) for row, r in ratios.items()
            }
    return table


def to_markdown(table: dict, rows: Sequence[str] = (*TABLE_METHODS, *CONTROL_TABLE_ROWS)) -> str:
    """Rows of the leakage table (methods, controls or ``"<method> (matched)"``) as README's Markdown; rows
    no column measured (a pixel method at ``--region cells``) are left out."""
    columns = list(table)
    header = "| method | " + " | ".join(f"{model} / {data}" for model, data in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for row in (r for r in rows if all(r in table[c] for c in columns)):
        cells = [f"{table[c][row][0]:.3f} ± {table[c][row][1]:.3f}" for c in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-table1``: the paper's Table 1 on the shipped models and data."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["models/masked_vgg.pt", "models/baseline_vgg.pt"])
    parser.add_argument("--data", nargs="+", default=["stack-shapes", "stack-clutter"],
                        help="generated sets, or stackmix:<folder of class folders> (camlab.study.stackmix)")
    parser.add_argument("--region", choices=REGIONS, default="computed",
                        help="where leakage is measured: the walled model's computed unseen region, the paper's "
                             "bottom 54 of 224 rows (its own metric), or the layer cells the walled head cannot read")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=None,
                        help="default: every method but the sampled ones (with --region cells, those with a map at "
                             "the layer's resolution), 'all' adds " + ", ".join(SAMPLED_METHODS))
    parser.add_argument("--at-init", nargs="+", default=None, choices=AT_INIT_ARCHITECTURES, metavar="ARCH",
                        help="instead: torchvision architectures with random weights, walled at their default layer "
                             f"(camlab.study.at_init; {', '.join(AT_INIT_ARCHITECTURES)})")
    parser.add_argument("--seeds", type=int, default=16, help="with --at-init: random initialisations per architecture")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    if args.at_init:
        bar = tqdm(total=len(args.at_init) * args.seeds, desc="walls at initialisation")
        at_init = leakage_at_init(args.at_init, args.seeds, sample_photographs(), on_seed=lambda *_: bar.update())
        bar.close()
        markdown = at_init_markdown(at_init)
        largest = {a: max(at_init[a]["inside"][m] for m in ELEMENTWISE_METHODS) for a in at_init}
        markdown += ("\n\nLargest |raw value| of " + ", ".join(ELEMENTWISE_METHODS) + " on a walled cell: "
                     + ", ".join(f"{a} {v:g}" for a, v in largest.items()))
        print(markdown)
        if args.out:
            Path(args.out).write_text(markdown + "\n")
        return
    listed = LAYER_MAP_METHODS if args.region == "cells" else TABLE_METHODS
    methods = [*listed, *SAMPLED_METHODS] if args.methods == ["all"] else args.methods or list(listed)
    table = leakage_table(args.models, args.data, args.images, methods=methods, region=args.region)
    markdown = (to_markdown(table, [*methods, *CONTROL_TABLE_ROWS])
                + "\n\nEach method's matched control (its own values at random smooth places):\n\n"
                + to_markdown(table, [m + MATCHED for m in methods]))
    print(markdown)
    if args.out:
        Path(args.out).write_text(markdown + "\n")


if __name__ == "__main__":
    main()
