"""Faithfulness metrics: they run the model on images changed by the map. Maps S are (N, H, W) in [0, 1].

Formulas (Y the softmax probability of the target class on the image, O on the image masked by the map):
- Average Drop               100 * mean(max(0, Y - O) / Y)        (Chattopadhay et al. 2018)
- Increase in Confidence     100 * mean(1[O > Y + 1e-6]) (a smaller rise is float noise between batches)
- Average Gain               100 * mean(max(0, O - Y) / (1 - Y))  (Zhang et al. 2024)
- ``@k`` variants: the same with S binarised to its top k% pixels (:func:`~camlab.metrics.controls.top_fraction`),
  so methods are compared at equal area; ties at the k% cut in K seeded random orders, averaged.
- insertion / deletion AUC (Petsiuk et al. 2018, RISE): pixels taken in order of decreasing
  saliency, ``H*W / steps`` per step (pixels of equal saliency in K seeded random orders,
  :func:`~camlab.metrics.controls.tie_ranks`, the results averaged over the orders); deletion
  replaces them in the image by ``deletion_fill``, insertion copies them into ``insertion_start``;
  trapezoid area under the probability curve on [0, 1].
- ROAD (Rong et al. 2022, :func:`road`): the mean change in probability when 10, 20, ..., 90% of the
  most (MoRF, lower is better) or least (LeRF, higher is better) relevant pixels are replaced by
  noisy linear imputation from their neighbours (:mod:`camlab.metrics.imputation`), so the shape
  of the removal carries no class information; combined = (LeRF - MoRF) / 2, higher is better.

Metrics that rank pixels return, beside each per-image mean over the K tie orders, its (N, K)
values per order under ``<key>:orders`` (:data:`~camlab.metrics.catalog.PER_ORDER`); only the
images and steps whose pixel set depends on the order are evaluated more than once.

Masking: ``space="pixel"`` multiplies the [0, 1] image by S (removed pixels go black);
``"normalized"`` blends towards ``mean`` (the model's normalisation mean, i.e. zero in its input
space). Fills and starts: ``black``, ``mean`` (the constant ``mean`` colour) or ``blur`` (RISE's
Gaussian blur, kernel 11, sigma 5). The defaults are deletion to black and insertion from the blur.
RISE's released evaluation (eclique/RISE ``evaluation.py`` with its notebook's ``substrate_fn``)
deletes to ``torch.zeros_like`` of the *normalised* tensor, i.e. the ``mean`` fill here, not black;
its insertion blurs the normalised tensor with zero padding (the mean colour at the border), where
torchvision's blur here reflects at the border. Pass ``deletion_fill="mean"`` for RISE's deletion.

A map that is zero everywhere gives NaN-free results: O is computed on a black (or mean) image.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.transforms.functional import gaussian_blur

from ..checks import check_classes, check_images, check_logits, check_maps, finite_number, run_model, whole_number
from ..errors import CamlabError
from ..models import IMAGENET_MEAN
from ..modes import eval_mode
from .catalog import PER_ORDER, Better, register_metric
from .controls import COVERAGES, check_ranks, image_seed, order_dependent, tie_ranks, top_count, top_fraction
from .imputation import noisy_linear_imputation

_EPS = 1e-12
_SAME_SCORE = 1e-6  # probabilities closer than this are equal (batch composition moves them by ~1e-7)
MASKING_SPACES = ("pixel", "normalized")
# What removed pixels become in deletion, AD@k and insertion's start (fill_image).
REMOVAL_FILLS = ("black", "mean", "blur")
CONFIDENCE = ("average_drop", "increase_in_confidence", "average_gain")

register_metric("average_drop", group="confidence", better=Better.LOWER, high=100, words="Average Drop", needs=("model",))
register_metric("increase_in_confidence", group="confidence", better=Better.HIGHER, high=100,
                words="Increase in Confidence", needs=("model",))
register_metric("average_gain", group="confidence", better=Better.HIGHER, high=100, words="Average Gain", needs=("model",))
register_metric("map_mean", group="confidence", better=Better.NONE, words="the map's mean (its coverage)")
register_metric("masked_modal_class_share", group="confidence", better=Better.NONE,
                words="share of map-masked images given their most common class", needs=("model",))
register_metric("insertion_auc", group="insdel", better=Better.HIGHER, words="insertion AUC", needs=("model",))
register_metric("deletion_auc", group="insdel", better=Better.LOWER, words="deletion AUC", needs=("model",))


def _mean_image(images: torch.Tensor, mean: Sequence[float]) -> torch.Tensor:
    return torch.as_tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1).expand_as(images)


def _masked(images: torch.Tensor, maps: torch.Tensor, space: str, mean: Sequence[float]) -> torch.Tensor:
    """The image multiplied by its map: in [0, 1] pixel space, or blended towards ``mean``."""
    if space == "pixel":
        return images * maps[:, None]
    if space == "normalized":
        base = _mean_image(images, mean)
        return base + (images - base) * maps[:, None]
    raise CamlabError(f"unknown masking space {space!r}; choose one of {', '.join(MASKING_SPACES)}")


def fill_image(images: torch.Tensor, fill: str, mean: Sequence[float] = IMAGENET_MEAN) -> torch.Tensor:
    """What removed pixels become: ``black``, the constant ``mean`` colour, or RISE's ``blur``."""
    if fill == "black":
        return torch.zeros_like(images)
    if fill == "mean":
        return _mean_image(images, mean)
    if fill == "blur":
        return gaussian_blur(images, kernel_size=[11, 11], sigma=[5.0, 5.0])  # RISE's klen=11, ksig=5
    raise CamlabError(f"unknown fill {fill!r}; choose one of {', '.join(REMOVAL_FILLS)}")


def scoring_copy(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of an eval-mode ``model`` for the many forwards a metric runs: each Conv2d followed
    by a BatchNorm2d inside an ``nn.Sequential`` folded into one convolution (torch's
    ``fuse_conv_bn_eval``; on the shipped VGG with channels-last, 1.3x faster per forward on a
    2-core CPU). Only a plain ``nn.Sequential`` runs its children in order, so nothing else is
    touched; the copy's softmax on ``example`` must match the model's to 1e-5, else the model
    itself is returned. Never for explanations: CAMs read the batch norms' own outputs."""
    if model.training:
        return model
    copy_ = copy.deepcopy(model)
    folded = 0
    for module in copy_.modules():
        if type(module) is nn.Sequential:
            children = list(module.named_children())
            for (first, conv), (second, norm) in zip(children, children[1:]):
                if type(conv) is nn.Conv2d and type(norm) is nn.BatchNorm2d and norm.track_running_stats:
                    setattr(module, first, fuse_conv_bn_eval(conv, norm))
                    setattr(module, second, nn.Identity())
                    folded += 1
    if not folded:
        return model
    with torch.inference_mode():
        folded_logits, logits = (check_logits(run_model(m, example), example.shape[0], finite=False) for m in (copy_, model))
        same = torch.allclose(folded_logits.softmax(1), logits.softmax(1), atol=1e-5)
    return copy_ if same else model


def scores(model: nn.Module, images: torch.Tensor, classes: torch.Tensor, chunk: int = 64,
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probability of ``classes[i]`` on ``images[i]`` and the predicted class, in chunks;
    in eval mode, as explanations are computed (each module's own mode is restored afterwards)."""
    chunk = whole_number("chunk", chunk, 1)
    classes = check_classes(classes, images.shape[0])
    probs, top = [], []
    with eval_mode(model), torch.inference_mode():
        for start in range(0, images.shape[0], chunk):
            # Channels-last lets oneDNN/cuDNN use their NHWC kernels (~1.35x on the shipped VGG, 2-core CPU).
            batch = images[start : start + chunk].contiguous(memory_format=torch.channels_last)
            softmax = check_logits(run_model(model, batch), batch.shape[0], finite=False).softmax(dim=1)
            if start == 0:  # checked before any gather: on CUDA a bad index poisons the whole context
                check_classes(classes, images.shape[0], softmax.shape[1])
            probs.append(softmax.gather(1, classes[start : start + chunk, None])[:, 0])
            top.append(softmax.argmax(dim=1))
    return torch.cat(probs), torch.cat(top)


def probabilities(model: nn.Module, images: torch.Tensor, classes: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Softmax probability of ``classes[i]`` on ``images[i]``, in chunks of ``chunk`` images."""
    return scores(model, images, classes, chunk)[0]


def _confidence_terms(clean: torch.Tensor, explained: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "average_drop": 100 * (clean - explained).clamp(min=0) / clean.clamp(min=_EPS),
        # an increase smaller than float noise between two batches of the same image is none
        "increase_in_confidence": 100 * (explained > clean + _SAME_SCORE).to(clean.dtype),
        "average_gain": 100 * (explained - clean).clamp(min=0) / (1 - clean).clamp(min=_EPS),
    }


def confidence_metrics(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
                       space: str = "pixel", mean: Sequence[float] = IMAGENET_MEAN, clean: torch.Tensor | None = None,
                       ) -> dict[str, torch.Tensor]:
    """Per-image Average Drop, Increase in Confidence and Average Gain terms (times 100), with the
    clean and explanation-masked probabilities and the class predicted on the masked image; means
    over images give the usual scores. Pass ``clean`` (the probabilities on the unmasked images)
    to save a forward when it is known."""
    maps = check_maps(maps, like=check_images(model, images))
    masked = _masked(images, maps, space, mean)
    clean = probabilities(model, images, classes) if clean is None else clean
    explained, predicted = scores(model, masked, classes)
    return {**_confidence_terms(clean, explained), "p_clean": clean, "p_explained": explained,
            "masked_class": predicted}


register_metric("occlusion_drop", group="occlusion", better=Better.NONE, high=100,
                words="Drop when the region's pixels are removed", needs=("model", "region"))
register_metric("occlusion_increase", group="occlusion", better=Better.NONE, high=100,
                words="Increase when the region's pixels are removed", needs=("model", "region"))


def region_occlusion(model: nn.Module, images: torch.Tensor, region: torch.Tensor, classes: torch.Tensor,
                     fill: str = "black", mean: Sequence[float] = IMAGENET_MEAN, clean: torch.Tensor | None = None,
                     ) -> dict[str, torch.Tensor]:
    """Per image, Drop and Increase (the Average Drop / Increase in Confidence terms) when the
    pixels of ``region`` ((H, W) or (N, H, W)) are replaced by ``fill``: what the model loses
    without them. In a region the model provably ignores both are 0; behind a feature wall they
    say how much of those pixels the cells beside the wall still see."""
    images = check_images(model, images)
    inside = torch.as_tensor(region, device=images.device) > 0
    inside = inside.expand(images.shape[0], *images.shape[-2:])[:, None]
    clean = probabilities(model, images, classes) if clean is None else clean
    terms = _confidence_terms(clean, probabilities(model, torch.where(inside, fill_image(images, fill, mean), images),
                                                   classes))
    return {"occlusion_drop": terms["average_drop"], "occlusion_increase": terms["increase_in_confidence"]}


def fixed_coverage_metrics(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
                           coverages: Sequence[float] = COVERAGES, space: str = "pixel", mean: Sequence[float] = IMAGENET_MEAN,
                           clean: torch.Tensor | None = None, ranks: torch.Tensor | None = None,
                           ) -> dict[str, torch.Tensor]:
    """Average Drop and Increase in Confidence with each map binarised to its top k% pixels,
    per image, keys ``average_drop@k`` and ``increase_in_confidence@k``: the mean over the tie
    orders of ``ranks`` (K, N, H*W) (default :func:`~camlab.metrics.controls.tie_ranks` of the
    maps), each order's values under ``<key>:orders``."""
    maps = check_maps(maps, like=check_images(model, images))
    clean = probabilities(model, images, classes) if clean is None else clean
    ranks = tie_ranks(maps) if ranks is None else check_ranks(ranks, maps)
    orders = ranks.shape[0]
    # Order 0 for every image; the other orders only where a cut splits a run of ties.
    dependent = order_dependent(maps, torch.tensor([top_count(k, maps[0].numel()) for k in coverages]))
    out = {}
    for column, k in enumerate(coverages):
        binary = top_fraction(maps, k, ranks)
        again = dependent[:, column].nonzero()[:, 0]
        shown = torch.cat([binary[0], binary[1:, again].flatten(0, 1)])
        chosen = torch.cat([torch.arange(len(maps), device=maps.device), again.repeat(orders - 1)])
        found = probabilities(model, _masked(images[chosen], shown, space, mean), classes[chosen])
        explained = found[: len(maps)].repeat(orders, 1)
        explained[1:, again] = found[len(maps):].view(orders - 1, len(again))
        terms = [_confidence_terms(clean, explained[order]) for order in range(orders)]
        label = f"{k:g}"
        for name in ("average_drop", "increase_in_confidence"):
            per_order = torch.stack([t[name] for t in terms], dim=1)
            out[f"{name}@{label}"] = per_order.mean(1)
            out[f"{name}@{label}{PER_ORDER}"] = per_order
    return out


def _curve(model: nn.Module, images: torch.Tensor, classes: torch.Tensor, ranks: torch.Tensor,
           thresholds: torch.Tensor, compose: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           chunk: int, again: torch.Tensor) -> torch.Tensor:
    """Probabilities (K, N, T): in order k at threshold t, ``compose`` builds the images from the
    pixels of rank < t (insertion reveals them, deletion and ROAD remove them or the rest). Order
    0 is evaluated at every (image, step), the other orders only where ``again`` (N, T) says the
    revealed set depends on the order; images are built a chunk at a time, never all steps at once."""
    orders, n, points = ranks.shape[0], images.shape[0], thresholds.numel()
    device = images.device
    first = torch.arange(n * points, device=device)
    repeat_image, repeat_step = again.nonzero(as_tuple=True)
    order = torch.cat([torch.zeros_like(first), torch.arange(1, orders, device=device).repeat_interleave(len(repeat_image))])
    image = torch.cat([first // points, repeat_image.repeat(orders - 1)])
    step = torch.cat([first % points, repeat_step.repeat(orders - 1)])
    curve = torch.empty(orders, n, points, device=device, dtype=images.dtype)
    for start in range(0, order.numel(), chunk):
        part = slice(start, start + chunk)
        revealed = (ranks[order[part], image[part]] < thresholds[step[part], None]).view(-1, 1, *images.shape[-2:])
        curve[order[part], image[part], step[part]] = probabilities(model, compose(image[part], revealed),
                                                                    classes[image[part]], chunk)
    curve[1:] = torch.where(again, curve[1:], curve[:1])  # order-free steps: the same image in every order
    return curve


def curve_ends(model: nn.Module, images: torch.Tensor, classes: torch.Tensor, deletion_fill: str = "black",
               insertion_start: str = "blur", mean: Sequence[float] = IMAGENET_MEAN, chunk: int = 64) -> torch.Tensor:
    """(2, N): the probabilities where every insertion curve starts (``insertion_start``) and every
    deletion curve ends (``deletion_fill``): they depend on the images, not on the maps."""
    starts = torch.cat([fill_image(images, insertion_start, mean), fill_image(images, deletion_fill, mean)])
    return probabilities(model, starts, classes.repeat(2), chunk).view(2, -1)


def insertion_deletion(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
                       steps: int = 32, chunk: int = 64, deletion_fill: str = "black", insertion_start: str = "blur",
                       mean: Sequence[float] = IMAGENET_MEAN, clean: torch.Tensor | None = None,
                       ends: torch.Tensor | None = None, ranks: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """RISE insertion and deletion curves (N, steps + 1) and their areas (N,), means over the tie
    orders of ``ranks`` (K, N, H*W) (default :func:`~camlab.metrics.controls.tie_ranks` of the
    maps), each order's areas under ``<key>:orders``; see the module docstring. Pass ``clean`` (the
    probabilities on the images) and ``ends`` (:func:`curve_ends`) to save the forwards when they
    are known (several maps of the same images)."""
    steps = whole_number("steps", steps, 1, 1024)
    chunk = whole_number("chunk", chunk, 1)
    maps = check_maps(maps, like=check_images(model, images))
    n, _, h, w = images.shape
    ranks = tie_ranks(maps) if ranks is None else check_ranks(ranks, maps)
    orders = ranks.shape[0]
    removed = fill_image(images, deletion_fill, mean)
    start = fill_image(images, insertion_start, mean)
    # Every curve starts and ends on a map-free image (the start, the image itself, everything
    # removed): those three run once per image; only the steps in between depend on the map.
    inner = torch.linspace(0, h * w, steps + 1, device=images.device).round()[1:-1]
    again = order_dependent(maps, inner)
    ends = (curve_ends(model, images, classes, deletion_fill, insertion_start, mean, chunk) if ends is None
            else ends).view(2, 1, n, 1).expand(2, orders, n, 1)
    clean = (probabilities(model, images, classes, chunk) if clean is None else clean).view(1, n, 1).expand(orders, n, 1)
    curves = {
        "insertion": torch.cat([ends[0], _curve(model, images, classes, ranks, inner,
                                                lambda i, shown: torch.where(shown, images[i], start[i]), chunk, again),
                                clean], dim=2),
        "deletion": torch.cat([clean, _curve(model, images, classes, ranks, inner,
                                             lambda i, gone: torch.where(gone, removed[i], images[i]), chunk, again),
                               ends[1]], dim=2),
    }
    out = {}
    for kind, curve in curves.items():
        per_order = torch.trapezoid(curve, dx=1.0 / steps, dim=2).T  # (N, K)
        out[f"{kind}_curve"] = curve.mean(0)
        out[f"{kind}_auc"] = per_order.mean(1)
        out[f"{kind}_auc{PER_ORDER}"] = per_order
    return out


ROAD_REMOVALS = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # percentages removed: ROAD's and grad-cam's defaults
ROAD_NOISE = 0.01  # the noise's standard deviation in [0, 1] pixel units
ROAD_DIRECTIONS = ("morf", "lerf")
register_metric("road_morf", group="road", better=Better.LOWER, low=-1, high=1, needs=("model",),
                words="ROAD, most relevant pixels removed first (mean change in probability)")
register_metric("road_lerf", group="road", better=Better.HIGHER, low=-1, high=1, needs=("model",),
                words="ROAD, least relevant pixels removed first (mean change in probability)")
register_metric("road_combined", group="road", better=Better.HIGHER, low=-1, high=1, needs=("model",),
                words="ROAD combined, (least-relevant-first - most-relevant-first) / 2")


def check_removals(removals: Sequence[float]) -> tuple[float, ...]:
    """ROAD's removal percentages, each in (0, 100): something must be removed and something kept."""
    if isinstance(removals, (str, bytes)) or not isinstance(removals, Sequence) or not removals:
        raise CamlabError(f"ROAD removals are a non-empty list of percentages, got {removals!r}")
    for percent in removals:
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 < percent < 100:
            raise CamlabError(f"a ROAD removal is a percentage in (0, 100), got {percent!r}")
    return tuple(float(p) for p in removals)


def road_noise(like: torch.Tensor, indices: torch.Tensor, scale: float = ROAD_NOISE, seed: int = 0) -> torch.Tensor:
    """ROAD's noise for images shaped like ``like`` (N, C, H, W): per image a standard normal field
    drawn on the CPU from ``(seed, indices[i])`` (stream 1 of :func:`~camlab.metrics.controls.image_seed`),
    times ``scale``; the same field wherever that image's pixels are imputed."""
    scale = finite_number("ROAD noise", scale, 0.0, 1.0)
    fields = torch.stack([torch.randn(like.shape[1:], generator=torch.Generator().manual_seed(image_seed(seed, int(i), 1)))
                          for i in torch.as_tensor(indices).tolist()])
    return (fields * scale).to(like)


def road(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
         removals: Sequence[float] = ROAD_REMOVALS, noise: torch.Tensor | None = None,
         clean: torch.Tensor | None = None, ranks: torch.Tensor | None = None, chunk: int = 16,
         ) -> dict[str, torch.Tensor]:
    """ROAD (Rong et al. 2022) per image: the mean over ``removals`` of the change in the class's
    probability when that percentage of the map's most (``road_morf``) or least (``road_lerf``)
    relevant pixels is replaced by noisy linear imputation (:mod:`camlab.metrics.imputation`), and
    ``road_combined`` = (lerf - morf) / 2; means over the tie orders of ``ranks`` (default
    :func:`~camlab.metrics.controls.tie_ranks`), each order's values under ``<key>:orders``, and the
    probabilities per removal under ``road_<direction>_curve`` (N, len(removals)). ``noise`` (N, C,
    H, W) is added to imputed pixels (:func:`road_noise`; default none). A removal's pixel count is
    :func:`~camlab.metrics.controls.top_count`, exact whatever the ties; grad-cam's ROAD instead
    removes every pixel at or above a percentile, which on a map with many equal values removes far
    more (or less) than asked. ``chunk`` imputations are solved at once."""
    chunk = whole_number("chunk", chunk, 1)
    removals = check_removals(removals)
    maps = check_maps(maps, like=check_images(model, images))
    n, size = maps.shape[0], maps[0].numel()
    counts = torch.tensor([top_count(p, size) for p in removals], device=maps.device)
    if int(counts.max()) >= size:
        raise CamlabError(f"a {size}-pixel image is too small for ROAD's removals {removals}: nothing would be kept")
    clean = probabilities(model, images, classes) if clean is None else clean
    ranks = tie_ranks(maps) if ranks is None else check_ranks(ranks, maps)
    if noise is not None and (not isinstance(noise, torch.Tensor) or noise.shape != images.shape):
        raise CamlabError(f"ROAD noise must be shaped like the images {tuple(images.shape)}")
    # MoRF removes the pixels ranked above a count, LeRF those ranked below size - count (the
    # complement of the top size - count); _curve runs every order only where the set depends on it.
    cuts = {"morf": counts, "lerf": size - counts}

    def impute(index: torch.Tensor, top: torch.Tensor, direction: str) -> torch.Tensor:
        removed = top[:, 0] if direction == "morf" else ~top[:, 0]
        return noisy_linear_imputation(images[index], removed, 0.0 if noise is None else noise[index])

    probability = {direction: _curve(model, images, classes, ranks, cut,
                                     lambda index, top, direction=direction: impute(index, top, direction), chunk,
                                     order_dependent(maps, cut))
                   for direction, cut in cuts.items()}
    out = {}
    per_order = {direction: (found - clean.view(1, n, 1)).mean(2).T for direction, found in probability.items()}
    per_order["combined"] = (per_order["lerf"] - per_order["morf"]) / 2
    for direction, values in per_order.items():
        out[f"road_{direction}"] = values.mean(1)
        out[f"road_{direction}{PER_ORDER}"] = values
    for direction in ROAD_DIRECTIONS:
        out[f"road_{direction}_curve"] = probability[direction].mean(0)
    return out
