"""Train walled / unwalled VGGs on the generated stacked datasets and write a model card.

    camlab-train --model masked_vgg --data stack-shapes --out models/masked_vgg.pt

``--guided-grad-reg LAMBDA`` adds the interpretable-gradients term:
    L = CE + LAMBDA * distance(input gradient, guided-backprop input gradient)
The input gradient is d(logit of the true class)/d(input), kept differentiable (double backprop)
so the term trains the weights; the guided-backprop gradient, taken in eval mode, is the fixed
target (no gradient flows through it). ``cosine`` distance (default) is 1 - cosine similarity of the
per-image flattened gradients; ``mse`` is the mean squared difference of the per-image
L2-normalised gradients, so neither depends on the gradients' overall scale.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..device import model_device
from ..errors import CamlabError
from ..evaluation import dataset_length
from ..methods.pixel import guided_input_gradients
from ..metrics.similarity import DISTANCES, gradient_distance
from ..modes import eval_mode
from ..targets import TargetScorer
from ..walls import unseen_region
from .augment import NO_AUGMENTATION, AugmentConfig, augment
from .data import CLASSES, StackedDataset, generate_sample
from .robustness import robustness_report
from .wallvgg import ARCHITECTURES, WalledNet, WallVGG, load_checkpoint, save_checkpoint

StepReport = Callable[[int, int, dict], None]  # on_step(done, total, that step's numbers)
ROBUSTNESS_IMAGES = 200  # the first test images every model card's robustness numbers are measured on


def input_gradients(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor,
                    create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and d(true-class logit)/d(input)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    (grad,) = torch.autograd.grad(logits.gather(1, labels[:, None]).sum(), x, create_graph=create_graph)
    return logits, grad


def guided_targets(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The guided-backprop input gradients of the true classes: the regulariser's fixed target."""
    with eval_mode(model):
        return guided_input_gradients(model, x, TargetScorer(classes=labels)).detach()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against probability targets (N, classes), mean over the batch."""
    return -(targets * logits.log_softmax(dim=1)).sum(dim=1).mean()


def guided_gradient_distance(model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor,
                             distance: str = "cosine") -> torch.Tensor:
    """The interpretable-gradients term: distance between d(true-class logit)/d(input), kept
    differentiable (double backprop), and the guided-backprop gradient, a fixed target. Both are
    taken in eval mode (batch-norm running statistics, no dropout): the gradients it penalises are
    the ones explanations see."""
    target = guided_targets(model, x, labels)
    with eval_mode(model):
        _, grad = input_gradients(model, x, labels, create_graph=True)
    return gradient_distance(grad, target, distance)


def training_loss(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor,
                  guided_grad_reg: float = 0.0, distance: str = "cosine",
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, cross-entropy, gradient distance, logits): soft-target cross-entropy in train mode,
    plus ``guided_grad_reg`` times :func:`guided_gradient_distance` when it is positive. A training
    step: it puts ``model`` in train mode and leaves it there for the optimiser step."""
    model.train()
    logits = model(images)
    ce = soft_cross_entropy(logits, targets)
    if guided_grad_reg <= 0:
        return ce, ce, torch.zeros((), device=ce.device), logits
    dist = guided_gradient_distance(model, images, labels, distance)
    return ce + guided_grad_reg * dist, ce, dist, logits


def featureless_pool(variant: str, size: int, count: int = 256, seed: int = 0) -> torch.Tensor:
    """The training split's first ``count`` scenes drawn with no object: inputs with nothing to classify."""
    return torch.stack([torch.from_numpy(generate_sample(variant, "train", i, size, seed, with_objects=False)[0])
                        .permute(2, 0, 1).float().div_(255) for i in range(count)])


@torch.no_grad()
def accuracy(model: torch.nn.Module, dataset: Dataset, batch_size: int = 64) -> float:
    """Top-1 accuracy on a dataset of (image, label), in eval mode."""
    with eval_mode(model):  # every module gets back its own mode afterwards
        correct = 0
        device = model_device(model)
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            correct += (model(images.to(device)).argmax(1) == labels.to(device)).sum()
        return float(correct) / dataset_length(dataset)


def mean_gradient_distance(model: torch.nn.Module, dataset: Dataset, distance: str = "cosine", batch_size: int = 32) -> float:
    """Mean over the dataset of the distance between the input gradient and the guided one."""
    with eval_mode(model):  # every module gets back its own mode afterwards
        total, count = 0.0, 0
        device = model_device(model)
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            images, labels = images.to(device), labels.to(device)
            _, grad = input_gradients(model, images, labels, create_graph=False)
            total += float(gradient_distance(grad, guided_targets(model, images, labels), distance)) * len(labels)
            count += len(labels)
        return total / count


def train(model: WalledNet, dataset: StackedDataset, epochs: int, batch_size: int, lr: float, seed: int,
          guided_grad_reg: float = 0.0, distance: str = "cosine", augmentation: AugmentConfig = NO_AUGMENTATION,
          progress: bool = True, on_step: StepReport | None = None, clean_share: float = 0.075,
          ramp_share: float = 0.3) -> list[dict]:
    """Adam with cosine decay; the wall is re-applied after every step. Returns per-epoch stats, and
    leaves the trained ``model`` in eval mode (contiguous memory), ready to explain and save.

    ``dataset`` must yield object masks (``StackedDataset(..., masks=True)``): the augmentation
    softens targets by the object evidence left (:mod:`camlab.study.augment`), judged only on the
    pixels this model can see. The first ``clean_share`` of the steps see clean images, then the
    augmentation ramps in linearly over the next ``ramp_share``: a small VGG trained from scratch
    needs ~75 clean steps to leave the "uniform on everything" solution, and heavy augmentation from
    the first step kept it there (measured: cross-entropy at ln 8 for all 2000 steps).
    ``on_step(done, total, stats)`` reports each optimiser step to a UI.
    """
    generator = torch.Generator().manual_seed(seed)
    changes = torch.Generator().manual_seed(seed + 1)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator, drop_last=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    total_steps = epochs * len(loader)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)
    history = []
    device = model_device(model)
    size = model.config.input_size
    seen = ~unseen_region(model, (3, size, size)).to(device)
    pool = featureless_pool(dataset.variant, size, seed=seed) if augmentation.featureless > 0 else None
    classes = model.config.num_classes
    model.to(memory_format=torch.channels_last)  # oneDNN's NHWC kernels: ~1.4x per step on a 2-core CPU
    for epoch in range(epochs):
        sums = {"loss": 0.0, "ce": 0.0, "grad_distance": 0.0, "batch_accuracy": 0.0}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
        for index, (images, labels, objects) in enumerate(bar):
            images, labels = images.to(device), labels.to(device)
            done = epoch * len(loader) + index
            ramp = min(1.0, max(0.0, (done - clean_share * total_steps) / max(1.0, ramp_share * total_steps)))
            images, targets = augment(images, labels, objects, pool, augmentation.scaled(ramp), changes, classes, seen)
            images = images.contiguous(memory_format=torch.channels_last)
            loss, ce, dist, logits = training_loss(model, images, targets, labels, guided_grad_reg, distance)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            model.apply_wall()
            step = {"loss": float(loss.detach()), "ce": float(ce.detach()), "grad_distance": float(dist.detach()),
                    "batch_accuracy": float((logits.argmax(1) == labels).float().mean())}
            for key, value in step.items():
                sums[key] += value
            bar.set_postfix(loss=f"{step['loss']:.3f}", ce=f"{step['ce']:.3f}")
            if on_step is not None:
                on_step(done + 1, total_steps, step)
        stats = {k: v / len(loader) for k, v in sums.items()}
        stats["epoch"] = epoch + 1
        history.append(stats)
    model.to(memory_format=torch.contiguous_format).eval()
    return history


def short_run(model: WallVGG, steps: int, guided_grad_reg: float, batch_size: int = 8, lr: float = 1e-4,
              data: str = "stack-shapes", seed: int = 0, check_images: int = 32,
              on_step: StepReport | None = None) -> dict:
    """Fine-tune a copy of ``model`` for ``steps`` optimiser steps (the app's "train it yourself"
    button) and measure it before and after on ``check_images`` test images. ``model`` is untouched."""
    tuned = copy.deepcopy(model)
    size = model.config.input_size
    train_set = StackedDataset(data, "train", size=size, length=steps * batch_size, seed=seed, masks=True)
    check = StackedDataset(data, "test", size=size, length=check_images, seed=seed)
    before = {"accuracy": accuracy(model, check), "grad_distance": mean_gradient_distance(model, check)}
    history = train(tuned, train_set, 1, batch_size, lr, seed, guided_grad_reg, progress=False, on_step=on_step)
    after = {"accuracy": accuracy(tuned, check), "grad_distance": mean_gradient_distance(tuned, check)}
    return {"model": tuned, "history": history, "before": before, "after": after}


def model_card(path: Path, args: argparse.Namespace, model: WalledNet, history: list[dict], test_accuracy: float,
               grad_distance: float, seconds: float, augmentation: AugmentConfig, robustness: dict) -> dict:
    """The model card (JSON) of a trained checkpoint: data, settings, accuracy, robustness, time."""
    unseen = unseen_region(model, (3, model.config.input_size, model.config.input_size))
    rows = unseen.all(dim=1).nonzero().flatten().tolist()
    return {
        "name": path.stem,
        "architecture": args.model,
        "config": model.config.__dict__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": {"dataset": args.data, "train_size": args.train_size, "test_size": args.test_size,
                 "image_size": model.config.input_size, "classes": list(CLASSES)},
        "training": {"seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "optimizer": "Adam + cosine decay", "guided_grad_reg": args.guided_grad_reg,
                     "grad_distance": args.grad_distance, "init": args.init, "history": history,
                     "seconds": round(seconds, 1), "torch": torch.__version__, "machine": platform.machine()},
        "test_accuracy": test_accuracy,
        "test_gradient_guided_distance": grad_distance,
        "masked_rows": model.config.masked_rows,
        "unseen_region": {"pixels": int(unseen.sum()), "full_rows": [rows[0], rows[-1]] if rows else None,
                          "description": (f"input rows {rows[0]}..{rows[-1]} (of {unseen.shape[0]})"
                                          if rows else "none: every pixel can reach the output")},
        "augmentation": augmentation.as_dict(),
        "robustness": robustness,
        "command": "camlab-train " + " ".join(args.argv),
    }


def write_card_markdown(card: dict, path: Path) -> None:
    """The model card as Markdown beside the checkpoint."""
    training, robust = card["training"], card["robustness"]
    accuracy_rows = [f"  - {kind}: {100 * value:.1f}%" for kind, value in robust["accuracy"].items()]
    featureless_rows = [f"  - {kind}: mean {v['mean']:.3f}, max {v['max']:.3f}"
                        for kind, v in robust["featureless max probability"].items()]
    lines = [
        f"# {card['name']}", "",
        f"- architecture: `{card['architecture']}` ({card['parameters']:,} parameters, width {card['config']['width']})",
        f"- data: `{card['data']['dataset']}`, {card['data']['train_size']} training images "
        f"{card['data']['image_size']}x{card['data']['image_size']}, {len(card['data']['classes'])} classes",
        f"- training: {training['epochs']} epochs, batch {training['batch_size']}, lr {training['lr']}, "
        f"seed {training['seed']}, {training['optimizer']}, guided-gradient regulariser "
        f"{training['guided_grad_reg']} ({training['grad_distance']}), init {training['init'] or 'random'}, "
        f"{training['seconds']} s on {training['machine']}",
        "- augmentation (`camlab.study.augment`, probability per image): "
        + ", ".join(f"{k} {v}" for k, v in card["augmentation"].items()),
        f"- **test accuracy: {100 * card['test_accuracy']:.2f}%** on {card['data']['test_size']} freshly generated "
        "test images",
        f"- gradient / guided-gradient distance on the test split: {card['test_gradient_guided_distance']:.4f}",
        f"- wall: {card['masked_rows']} masked feature rows; unseen region (computed by "
        f"`camlab.walls.unseen_region`): {card['unseen_region']['description']}",
        f"- under the metrics' perturbations (`camlab.study.robustness`, first {robust['images']} test images):",
        "  accuracy", *accuracy_rows, "  largest class probability on featureless inputs (1/8 = no idea)",
        *featureless_rows,
        "", "Reproduce with:", "", f"    {card['command']}", "",
    ]
    path.write_text("\n".join(lines))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``camlab-train``'s options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(ARCHITECTURES), default="masked_vgg")
    parser.add_argument("--data", choices=("stack-shapes", "stack-clutter"), default="stack-shapes")
    parser.add_argument("--width", type=float, default=None,
                        help="channel multiplier (1.0 = paper size; default 1/8 for the VGGs and ViTs, 1/4 for the ResNets)")
    parser.add_argument("--masked-rows", type=int, default=9)
    parser.add_argument("--no-batch-norm", action="store_true", help="the paper's plain VGG (slow to start)")
    parser.add_argument("--no-augment", action="store_true", help="train on clean images only (not robust)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--test-size", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guided-grad-reg", type=float, default=0.0, metavar="LAMBDA")
    parser.add_argument("--grad-distance", choices=DISTANCES, default="cosine")
    parser.add_argument("--init", default=None, help="start from this camlab checkpoint of the same --model (fine-tuning)")
    parser.add_argument("--out", default=None, help="checkpoint path (default models/<model>.pt)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.guided_grad_reg < 0:
        parser.error(f"--guided-grad-reg must be 0 or more, got {args.guided_grad_reg}")
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    return args


# Default widths: the shipped VGGs' 1/8, for the ResNets the smallest camlab.study.wallresnet allows, and for
# the ViTs 1/8 of ViT-B's 768 (96-wide tokens, three heads).
DEFAULT_WIDTHS = {"vgg": 0.125, "resnet": 0.25, "vit": 0.125}


def initial_model(args: argparse.Namespace) -> WalledNet:
    """A fresh model of ``--model``, or the ``--init`` checkpoint, which must be of that architecture."""
    if args.init:
        loaded = load_checkpoint(args.init)
        if loaded.architecture != args.model:
            raise CamlabError(f"--init {args.init} is a {loaded.architecture} checkpoint, not {args.model}; "
                              f"pass --model {loaded.architecture} or another --init")
        if not isinstance(loaded.model, WalledNet):
            raise CamlabError(f"--init {args.init} is not one of camlab's walled models")
        return loaded.model
    options: dict[str, Any] = {"masked_rows": args.masked_rows} if args.model.startswith("masked_") else {}
    if args.model.endswith("_vgg"):
        options["batch_norm"] = not args.no_batch_norm
    elif args.no_batch_norm:
        raise CamlabError("--no-batch-norm is the paper's plain VGG; a ResNet's blocks have batch norm, a ViT's "
                          "layer norm")
    width = args.width if args.width is not None else DEFAULT_WIDTHS[args.model.split("_")[1]]
    return ARCHITECTURES[args.model](num_classes=len(CLASSES), width=width, **options)


def main(argv: Sequence[str] | None = None) -> None:
    """``camlab-train``: train a walled VGG (or its twin) and write its checkpoint and card."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    try:
        model = initial_model(args)
    except CamlabError as exc:
        raise SystemExit(f"camlab-train: {exc}") from exc
    out = Path(args.out or f"models/{args.model}.pt")
    augmentation = NO_AUGMENTATION if args.no_augment else AugmentConfig()
    train_set = StackedDataset(args.data, "train", length=args.train_size, seed=args.seed, masks=True)
    test_set = StackedDataset(args.data, "test", length=args.test_size, seed=args.seed)
    start = time.perf_counter()
    # A fine-tune starts from a model that already learned: no clean warm-up, no ramp.
    warm_up: dict[str, Any] = {"clean_share": 0.0, "ramp_share": 0.0} if args.init else {}
    history = train(model, train_set, args.epochs, args.batch_size, args.lr, args.seed, args.guided_grad_reg,
                    args.grad_distance, augmentation, progress=not args.no_progress, **warm_up)
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(model, test_set)
    grad_distance = mean_gradient_distance(model, StackedDataset(args.data, "test", length=128, seed=args.seed),
                                           args.grad_distance)
    robustness = robustness_report(model, args.data, "test", ROBUSTNESS_IMAGES, seed=args.seed)
    card = model_card(out, args, model, history, test_accuracy, grad_distance, seconds, augmentation, robustness)
    save_checkpoint(out, model, args.model, CLASSES)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    write_card_markdown(card, out.with_suffix(".md"))
    print(f"{out}: test accuracy {100 * test_accuracy:.2f}%, gradient/guided distance {grad_distance:.4f}")


if __name__ == "__main__":
    main()
