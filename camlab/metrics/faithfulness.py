"""Faithfulness metrics: they run the model on images changed by the map. Maps S are (N, H, W) in [0, 1].

Formulas (Y the softmax probability of the target class on the image, O on the image multiplied
by the map):
- Average Drop     100 * mean(max(0, Y - O) / Y)
- Increase in Confidence 100 * mean(1[O > Y])
- Average Gain     100 * mean(max(0, O - Y) / (1 - Y))
- insertion / deletion AUC (RISE): pixels added to a blurred start / removed to zeros in order of
  decreasing saliency, ``steps`` steps, trapezoid area under the probability curve.
A map that is zero everywhere gives NaN-free results: O is computed on a black image.
"""
from __future__ import annotations

import torch

from ..errors import CamlabError

_EPS = 1e-12

MASKING_SPACES = ("pixel", "normalized")


def _masked(images: torch.Tensor, maps: torch.Tensor, space: str, mean) -> torch.Tensor:
    """The image multiplied by its map. ``pixel``: in [0, 1] pixel space (then the model normalises
    as usual). ``normalized``: in the model's normalised space, i.e. blending towards ``mean``."""
    if space == "pixel":
        return images * maps[:, None]
    if space == "normalized":
        mean = torch.as_tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        return mean + (images - mean) * maps[:, None]
    raise CamlabError(f"unknown masking space {space!r}; choose one of {', '.join(MASKING_SPACES)}")


def _probabilities(model, images: torch.Tensor, classes: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for start in range(0, images.shape[0], chunk):
            # Channels-last lets oneDNN/cuDNN use their NHWC kernels (~1.35x on the shipped VGG, 2-core CPU).
            batch = images[start : start + chunk].contiguous(memory_format=torch.channels_last)
            probs = model(batch).softmax(dim=1)
            out.append(probs.gather(1, classes[start : start + chunk, None])[:, 0])
    return torch.cat(out)


def confidence_metrics(model, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
                       space: str = "pixel", mean=(0.485, 0.456, 0.406)) -> dict[str, torch.Tensor]:
    """Per-image Average Drop, Increase in Confidence and Average Gain terms (times 100), with the
    clean and explanation-masked probabilities. Means over images give the usual scores."""
    masked = _masked(images, maps, space, mean)
    clean = _probabilities(model, images, classes)
    explained = _probabilities(model, masked, classes)
    return {
        "average_drop": 100 * (clean - explained).clamp(min=0) / clean.clamp(min=_EPS),
        "increase_in_confidence": 100 * (explained > clean).to(clean.dtype),
        "average_gain": 100 * (explained - clean).clamp(min=0) / (1 - clean).clamp(min=_EPS),
        "p_clean": clean, "p_explained": explained,
    }


def _blurred(images: torch.Tensor) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    return gaussian_blur(images, kernel_size=[11, 11], sigma=[5.0, 5.0])  # RISE's klen=11, ksig=5


def insertion_deletion(model, images: torch.Tensor, maps: torch.Tensor, classes: torch.Tensor,
                       steps: int = 32, chunk: int = 64) -> dict[str, torch.Tensor]:
    """RISE insertion and deletion curves (N, steps + 1) and their areas (N,).

    Pixels are taken in order of decreasing saliency, ``H*W / steps`` per step; deletion sets them to
    zero from the image, insertion copies them into a blurred copy. Area: trapezoid rule on [0, 1].
    """
    if steps < 1:
        raise CamlabError("steps must be at least 1")
    n, _, h, w = images.shape
    order = maps.flatten(1).argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=maps.device).expand(n, -1))
    thresholds = torch.linspace(0, h * w, steps + 1, device=maps.device).round()
    revealed = (rank[:, None, :] < thresholds[None, :, None]).view(n, steps + 1, 1, h, w)
    start = _blurred(images)
    inserted = torch.where(revealed, images[:, None], start[:, None]).flatten(0, 1)
    deleted = torch.where(revealed, torch.zeros_like(images[:, None]), images[:, None]).flatten(0, 1)
    classes_rep = classes.repeat_interleave(steps + 1)
    curves = {
        name: _probabilities(model, batch, classes_rep, chunk).view(n, steps + 1)
        for name, batch in (("insertion", inserted), ("deletion", deleted))
    }
    auc = {f"{k}_auc": torch.trapezoid(v, dx=1.0 / steps, dim=1) for k, v in curves.items()}
    return {**{f"{k}_curve": v for k, v in curves.items()}, **auc}
