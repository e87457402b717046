"""Pick Conceptor-CAM's default aperture on the stack-shapes validation split, by Average Drop.

    python scripts/choose_aperture.py --images 64
"""
import argparse

from camlab.evaluation import evaluate
from camlab.study.data import StackedDataset
from camlab.study.wallvgg import load_checkpoint

METHODS = ("conceptorcam", "conceptor-gradcam")

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="models/masked_vgg.pt")
parser.add_argument("--images", type=int, default=64)
parser.add_argument("--apertures", type=float, nargs="+", default=[0.5, 1, 2, 4, 8, 16])
args = parser.parse_args()
loaded = load_checkpoint(args.model)
data = StackedDataset("stack-shapes", "val", length=args.images)
print("| aperture | conceptorcam AD | conceptorcam IC | conceptor-gradcam AD | conceptor-gradcam IC |")
print("|---|---|---|---|---|")
for aperture in args.apertures:
    scores = evaluate(loaded.model, loaded.default_layer, data, METHODS, ("confidence",), progress=False,
                      options={m: {"aperture": aperture} for m in METHODS}).table
    print(f"| {aperture} | " + " | ".join(f"{scores[m][k]:.2f}" for m in METHODS
                                         for k in ("average_drop", "increase_in_confidence")) + " |")
