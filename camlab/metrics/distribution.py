"""Does the model stay in distribution under the metrics' own perturbations? Before Average Drop
or deletion can say anything about a map, the model must still respond to the image once pixels
are removed: if every masked or darkened image collapses to one class, or a black image keeps the
class's confidence, those metrics describe the model, not the map.

Per image, the softmax probability of the explained class on its clean version and on each
perturbed version (:data:`PERTURBATIONS`), and the class predicted there; over a dataset, the mean
probabilities and the share of images given their most common class (``modal_share_<kind>``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..models import IMAGENET_MEAN
from .catalog import Better, register_metric
from .controls import random_smooth, top_count
from .faithfulness import ROAD_NOISE, fill_image, scores
from .imputation import noisy_linear_imputation

PERTURBATIONS = {
    "black": "a black image (deletion's end, Average Drop's all-zero map)",
    "mean": "an image of the mean colour (the 'mean' fill)",
    "blur": "the Gaussian-blurred image (insertion's start)",
    "darkened": "the image at half brightness",
    "masked": "the image multiplied by a random smooth map (what a map-masked image looks like)",
    "imputed": "the image with half its pixels, where a random smooth map is highest, filled in by noisy linear "
               "imputation (ROAD's removal for a map that knows nothing)",
}
IMPUTED_SHARE = 50  # percent of the pixels ROAD's perturbation check removes
DARKENING = 0.5
# Warnings (see :func:`distribution_warnings`)
COLLAPSE_SHARE = 0.9  # this share or more of the masked images given one class
BLACK_CONFIDENCE = 0.5  # a black image keeps at least this fraction of the clean confidence

register_metric("p_clean", group="distribution", better=Better.NONE, words="confidence on the clean image",
                needs=("model",))
for _kind, _what in PERTURBATIONS.items():
    register_metric(f"p_{_kind}", group="distribution", better=Better.NONE, words=f"confidence on {_what}",
                    needs=("model",))
    register_metric(f"modal_share_{_kind}", group="distribution", better=Better.NONE,
                    words=f"share of images given their most common class on {_what}", needs=("model",))
register_metric("modal_share_clean", group="distribution", better=Better.NONE,
                words="share of images given their most common class on the clean images", needs=("model",))


def perturbed(images: torch.Tensor, kind: str, seed: int = 0, mean: Sequence[float] = IMAGENET_MEAN) -> torch.Tensor:
    """``images`` (N, 3, H, W) in [0, 1] changed as :data:`PERTURBATIONS` says."""
    if kind == "darkened":
        return images * DARKENING
    if kind in ("masked", "imputed"):
        maps = random_smooth(images.shape[0], tuple(images.shape[-2:]), seed=seed, device=images.device)
        if kind == "masked":
            return images * maps[:, None].to(images.dtype)
        flat = maps.flatten(1)
        removed = torch.zeros_like(flat, dtype=torch.bool).scatter_(
            1, flat.topk(top_count(IMPUTED_SHARE, flat.shape[1]), dim=1).indices, True).view_as(maps)
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)) * ROAD_NOISE
        return noisy_linear_imputation(images, removed, noise.to(images))
    return fill_image(images, kind, mean)


def distribution_readouts(model: nn.Module, images: torch.Tensor, classes: torch.Tensor,
                          seed: int = 0) -> dict[str, torch.Tensor]:
    """Per image: ``p_clean`` and ``p_<kind>`` (probability of ``classes``) and ``class_clean`` /
    ``class_<kind>`` (the predicted class), for every perturbation, in one batched pass."""
    kinds = ["clean", *PERTURBATIONS]
    batch = torch.cat([images, *(perturbed(images, kind, seed) for kind in PERTURBATIONS)])
    probabilities, predicted = scores(model, batch, classes.repeat(len(kinds)))
    n = images.shape[0]
    out = {}
    for index, kind in enumerate(kinds):
        out[f"p_{kind}"] = probabilities[index * n : (index + 1) * n]
        out[f"class_{kind}"] = predicted[index * n : (index + 1) * n]
    return out


def modal_share(predicted: torch.Tensor) -> float:
    """Share of the images given their most common class."""
    return float(predicted.bincount().max()) / max(1, predicted.numel())


def distribution_warnings(summary: dict[str, float]) -> list[str]:
    """Plain sentences for a report when the model leaves its distribution under the perturbations
    (``summary``: the means of ``p_*`` and the ``modal_share_*`` over the data)."""
    warnings = []
    clean_share = summary.get("modal_share_clean", 0.0)
    for kind in ("masked", "imputed", "darkened", "blur"):
        share = summary.get(f"modal_share_{kind}")
        if share is not None and share >= COLLAPSE_SHARE > clean_share:
            warnings.append(f"{100 * share:.0f}% of the images become one class on {PERTURBATIONS[kind]} "
                            f"(against {100 * clean_share:.0f}% on the clean images): metrics that remove pixels "
                            "(Average Drop, deletion, ROAD, Increase in Confidence) measure that collapse more than "
                            "the maps")
    clean, black = summary.get("p_clean"), summary.get("p_black")
    if clean and black is not None and black >= BLACK_CONFIDENCE * clean:
        warnings.append(f"on a black image the explained class's confidence is {black:.2f}, against {clean:.2f} on "
                        "the clean images: removing the pixels a map points at cannot lower it much, whatever the map")
    return warnings
