"""Sanity checks that run the explainer again: on changed models (Adebayo et al. 2018) and for
another class (the random-logit test, Sixt et al. 2020)."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..engine import Explanation, explain
from ..errors import CamlabError
from ..reshape import Reshape
from .catalog import Better, register_metric
from .similarity import spearman, ssim

for _key, _words in (("rank", "Spearman of display maps"), ("rank_raw", "Spearman of signed raw maps"),
                     ("ssim", "SSIM of display maps")):
    for _end, _what in (("top", "top layer randomised"), ("all", "every layer randomised"),
                        ("first", "only the input-side layer randomised")):
        # near 0 is the good outcome, not "lower": a method's map should stop resembling itself
        register_metric(f"sanity_{_key}_{_end}", group="sanity", better=Better.NONE, low=-1,
                        words=f"sanity, {_words}, {_what} (near 0 is good)", needs=("model", "explainer"))


RANDOMISATION_INITS = ("noise", "reset")


def _randomise(module: nn.Module, init: str, generator: torch.Generator, seed: int) -> None:
    with torch.no_grad():
        if init == "reset":
            # The layer's own initialisation (a BatchNorm's running statistics included), from a
            # seed of its own so the rest of the program's random stream is left alone.
            devices = [p.device for p in module.parameters(recurse=False) if p.device.type == "cuda"][:1]
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                module.reset_parameters()
            return
        for param in module.parameters(recurse=False):
            # Noise drawn on the CPU from one seed, so every device randomises alike, at the
            # parameter's own scale: its spread, or for a one-element parameter (a PReLU slope,
            # a one-output bias), whose spread is undefined, its magnitude.
            scale = param.std() if param.numel() > 1 else param.abs().flatten()[0]
            param.copy_(torch.randn(param.shape, generator=generator).to(param) * scale.clamp(min=1e-3))


def cascading_randomisation(model: nn.Module, images: torch.Tensor, method: str | Sequence[str], target_layer: str,
                            classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, *,
                            independent: bool = False, init: str = "noise", reference: Explanation | None = None,
                            ) -> list[dict[str, float | str]] | dict[str, list[dict[str, float | str]]]:
    """Re-initialise the model's parametrised layers from the output down, cumulatively, and compare
    each randomised model's map with the trained model's, as Adebayo et al. do: mean over images of
    the Spearman rank correlation (average ranks for ties) of the display maps (``rank``) and of the
    signed raw maps (``rank_raw``), and the SSIM of the display maps (``ssim``). A method that
    explains *this* model decorrelates quickly. One entry per randomised layer, output side first.

    ``method`` a name: that list; a sequence of names: one list per method, all explained in one
    call per randomised model (gradient methods share its forward and backward), each equal to what
    the method alone gets (the randomisation depends on the seed only).

    ``independent``: each layer randomised alone in a fresh copy of the trained model (Adebayo et
    al.'s independent variant) instead of cumulatively. ``init``: ``"noise"`` (Gaussian noise at
    each parameter's own scale, drawn on the CPU: the same on every device) or ``"reset"`` (the
    layer's own ``reset_parameters``, batch norms' running statistics included, as Quantus does).
    ``reference``: the trained model's explanation of these images and classes, when already made."""
    if init not in RANDOMISATION_INITS:
        raise CamlabError(f"unknown randomisation {init!r}; choose one of {', '.join(RANDOMISATION_INITS)}")
    methods = [method] if isinstance(method, str) else list(method)
    if reference is None:
        reference = explain(model, images, methods, target_layer, targets=classes, reshape=reshape)
    twin = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    layers = [(name, m) for name, m in twin.named_modules() if hasattr(m, "reset_parameters") and
              any(True for _ in m.parameters(recurse=False))]
    report: dict[str, list[dict[str, float | str]]] = {m: [] for m in methods}
    for step, (name, module) in enumerate(reversed(layers)):
        if independent and step:
            twin = copy.deepcopy(model)  # only this layer random: the others as trained
            module = twin.get_submodule(name)
        _randomise(module, init, generator, seed + step)
        randomised = explain(twin, images, methods, target_layer, targets=classes, reshape=reshape)
        for m in methods:
            report[m].append({
                "layer": name,
                "rank": float(spearman(reference[m].display, randomised[m].display).mean()),
                "rank_raw": float(spearman(reference[m].raw, randomised[m].raw).mean()),
                "ssim": float(ssim(reference[m].display, randomised[m].display).mean()),
            })
    return report[method] if isinstance(method, str) else report


for _key, _words in (("rank", "Spearman of display maps"), ("rank_raw", "Spearman of signed raw maps"),
                     ("ssim", "SSIM of display maps")):
    register_metric(f"sanity_{_key}_logit", group="sanity", better=Better.NONE, low=-1,
                    words=f"sanity, {_words}, the explained class against a random other class (near 0 is good)",
                    needs=("model", "explainer"))


def random_logit(model: nn.Module, images: torch.Tensor, method: str | Sequence[str], target_layer: str,
                 classes: torch.Tensor, seed: int = 0, reshape: Reshape = None, reference: Explanation | None = None,
                 ) -> dict[str, float] | dict[str, dict[str, float]]:
    """The random-logit test (Sixt et al. 2020): each image's map for its explained class against its
    map for another class drawn uniformly from the rest (from ``seed``, on the CPU), as
    :func:`cascading_randomisation` compares them (``rank``, ``rank_raw``, ``ssim``, means over the
    images). A map that explains the *decision* differs between classes; one that draws the object
    whatever the class asked for stays near 1. ``reference`` as for :func:`cascading_randomisation`."""
    methods = [method] if isinstance(method, str) else list(method)
    if reference is None:
        reference = explain(model, images, methods, target_layer, targets=classes, reshape=reshape)
    count = reference.logits.shape[1]
    if count < 2:
        raise CamlabError("the random-logit test needs a model with at least two classes")
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, count, (images.shape[0],), generator=generator).to(classes.device)
    others = (classes + shift) % count  # uniform over the other classes
    other = explain(model, images, methods, target_layer, targets=others, reshape=reshape)
    report = {m: {"rank": float(spearman(reference[m].display, other[m].display).mean()),
                  "rank_raw": float(spearman(reference[m].raw, other[m].raw).mean()),
                  "ssim": float(ssim(reference[m].display, other[m].display).mean())} for m in methods}
    return report[method] if isinstance(method, str) else report
