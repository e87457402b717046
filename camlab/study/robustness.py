"""Does a model stay in distribution under the faithfulness metrics' own perturbations?

Average Drop multiplies the image by a map, deletion zeroes pixels, insertion starts from a blurred
copy, occlusion blanks regions. A model that calls a black image a "circle" with probability 1, or
fails on a darkened image, makes those readouts measure its brittleness instead of the map. This
module measures that on held-out images, for the model cards and the tests:

- accuracy on clean images, on images scaled by 0.5 / 0.25 / 0.1, with the top or the bottom tile
  blanked (black), and multiplied by a random smooth map (7x7, upsampled, as a random-control CAM);
- the largest class probability on featureless inputs: black, mid-grey, the split's mean image,
  uniform random colours, the generator's backgrounds with no object, and RISE's blurred start
  (Gaussian, kernel 11, sigma 5) of each image. 1/8 is "I don't know" for 8 classes.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch
from torch import nn

from ..device import model_device
from ..metrics.controls import random_smooth
from ..metrics.faithfulness import fill_image
from ..modes import eval_mode
from .data import StackedDataset, generate_sample
from .wallvgg import load_checkpoint

SCALES = (0.5, 0.25, 0.1)


@torch.inference_mode()
def _predict(model: nn.Module, images: torch.Tensor, batch: int = 50) -> torch.Tensor:
    return torch.cat([model(images[i : i + batch]).softmax(1) for i in range(0, len(images), batch)])


def featureless_inputs(variant: str, split: str, count: int, size: int, mean_image: torch.Tensor,
                       seed: int = 0) -> dict[str, torch.Tensor]:
    """Featureless inputs by kind, each (n, 3, size, size) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    colours = torch.rand(count, 3, 1, 1, generator=generator).expand(count, 3, size, size)
    backgrounds = torch.stack([
        torch.from_numpy(generate_sample(variant, split, i, size, with_objects=False)[0]).permute(2, 0, 1).float() / 255
        for i in range(count)
    ])
    return {
        "black": torch.zeros(1, 3, size, size),
        "mid-grey": torch.full((1, 3, size, size), 0.5),
        "mean image": mean_image[None],
        "uniform colours": colours.contiguous(),
        "backgrounds without objects": backgrounds,
    }


def robustness_report(model: nn.Module, variant: str = "stack-shapes", split: str = "test", images: int = 200,
                      tile_rows: int | None = None, seed: int = 0) -> dict:
    """The numbers of the module docstring on the first ``images`` images of ``split``.
    ``tile_rows`` is the height of the top tile (default: half the image)."""
    with eval_mode(model):  # every module gets back its own mode afterwards
        device = model_device(model)
        data = StackedDataset(variant, split, length=images, seed=seed)
        x = torch.stack([data[i][0] for i in range(images)]).to(device)
        labels = torch.tensor([data[i][1] for i in range(images)], device=device)
        size = x.shape[-1]
        tile_rows = tile_rows or size // 2

        def accuracy(batch: torch.Tensor) -> float:
            return float((_predict(model, batch).argmax(1) == labels).float().mean())

        top_blank, bottom_blank = x.clone(), x.clone()
        top_blank[:, :, :tile_rows] = 0
        bottom_blank[:, :, tile_rows:] = 0
        maps = random_smooth(images, (size, size), seed=seed, device=device)
        report = {
            "images": images, "split": split, "dataset": variant,
            "accuracy": {
                "clean": accuracy(x),
                **{f"scaled x{s}": accuracy(x * s) for s in SCALES},
                "top tile blank": accuracy(top_blank),
                "bottom tile blank": accuracy(bottom_blank),
                "random smooth map": accuracy(x * maps[:, None]),
            },
        }
        featureless = featureless_inputs(variant, split, min(images, 100), size, x.mean(0).cpu(), seed)
        featureless["RISE blurred start"] = fill_image(x, "blur").cpu()
        report["featureless max probability"] = {}
        for kind, batch in featureless.items():
            top = _predict(model, batch.to(device)).amax(1)
            report["featureless max probability"][kind] = {"mean": float(top.mean()), "max": float(top.max())}
        return report


def main(argv: Sequence[str] | None = None) -> None:
    """A model's robustness report (the model card's numbers) from the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default="stack-shapes")
    parser.add_argument("--split", default="test")
    parser.add_argument("--images", type=int, default=200)
    args = parser.parse_args(argv)
    for path in args.models:
        report = robustness_report(load_checkpoint(path).model, args.data, args.split, args.images)
        print(path, json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
