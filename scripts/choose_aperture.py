"""Choose Conceptor-CAM's aperture on the stack-shapes *validation* split, by criteria that coverage
cannot drive: Average Drop at a fixed 20% area (lower is better) and insertion AUC (higher).
Plain Average Drop and the map's mean value (its coverage) are printed beside them, to show how
much of plain Average Drop is coverage.

    python scripts/choose_aperture.py --images 48
"""
import argparse

from camlab.evaluation import ReadoutConfig, evaluate
from camlab.study.data import StackedDataset
from camlab.study.wallvgg import load_checkpoint

METHODS = ("conceptorcam", "conceptor-gradcam")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model", default="models/masked_vgg.pt")
parser.add_argument("--images", type=int, default=48)
parser.add_argument("--apertures", type=float, nargs="+", default=[0.5, 1, 2, 4, 8, 16])
args = parser.parse_args()
loaded = load_checkpoint(args.model)
data = StackedDataset("stack-shapes", "val", length=args.images)
print(f"{loaded.name}, {args.images} validation images")
print("| aperture | method | AD@20 ↓ | insertion ↑ | AD ↓ | mean map value |")
print("|---|---|---|---|---|---|")
for aperture in args.apertures:
    config = ReadoutConfig(METHODS, ("confidence", "coverage", "insdel"), coverages=(20,), steps=16, controls=False,
                           options={m: {"aperture": aperture} for m in METHODS})
    outcome = evaluate(loaded.model, loaded.default_layer, data, config, progress=False)
    for method in METHODS:
        row = outcome.table[method]
        print(f"| {aperture:g} | {method} | {row['average_drop@20']:.2f} | {row['insertion_auc']:.3f} | "
              f"{row['average_drop']:.2f} | {row['map_mean']:.3f} |")
