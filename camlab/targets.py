"""Turning the user's ``targets`` argument into a scorer over logits."""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import torch

from .checks import check_classes, whole_number
from .errors import CamlabError

TargetSpec = None | int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TargetScorer:
    """Scores rows of logits; ``rows[j]`` says which input image row j of the logits belongs to.

    ``classes`` is set for class-index targets; a callable target must act row-wise
    (``fn(logits[B, classes]) -> scores[B]``) because perturbation methods evaluate it on chunks.
    """

    classes: torch.Tensor | None
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __call__(self, logits: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The target score of each row of ``logits`` (only ``rows`` of the classes when given)."""
        if self.fn is not None:
            scores = self.fn(logits)
            if not isinstance(scores, torch.Tensor) or scores.shape != logits.shape[:1]:
                raise CamlabError(
                    "a callable target must return one score per row of logits "
                    f"(shape ({logits.shape[0]},)), got {getattr(scores, 'shape', type(scores))}"
                )
            return scores
        if self.classes is None:
            raise CamlabError("a target scorer needs classes or a callable")
        classes = self.classes if rows is None else self.classes[rows]
        return logits.gather(1, classes[:, None])[:, 0]


def resolve_targets(targets: TargetSpec, logits: torch.Tensor) -> TargetScorer:
    """``None``: each image's top class; int: that class for all; list/tensor: one per image; callable.
    Class indices must be whole numbers within the model's classes (2.7 is refused, not rounded)."""
    batch, num_classes = logits.shape
    if targets is None:
        return TargetScorer(classes=logits.argmax(dim=1))
    if callable(targets) and not isinstance(targets, torch.Tensor):
        return TargetScorer(classes=None, fn=targets)
    if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
        whole_number("the target class", targets, 0, num_classes - 1)
        return TargetScorer(classes=torch.full((batch,), int(targets), dtype=torch.long, device=logits.device))
    if isinstance(targets, (bool, float, str, bytes)) or isinstance(targets, numbers.Real):
        raise CamlabError(f"targets must be class indices (whole numbers), a list of them, a callable or None; "
                          f"got {targets!r}")
    try:
        # One class (an Integral) returned above; anything else not iterable is the TypeError below.
        raw = targets if isinstance(targets, torch.Tensor) else torch.as_tensor(list(cast(Sequence[int], targets)))
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise CamlabError(f"targets {targets!r} are not class indices") from exc
    if raw.is_floating_point() or raw.is_complex() or raw.dtype == torch.bool:
        raise CamlabError(f"targets must be whole class indices, got {raw.dtype} values {raw.flatten().tolist()[:8]}")
    classes = raw.flatten().to(device=logits.device, dtype=torch.long)
    if classes.numel() != batch:
        raise CamlabError(f"got {classes.numel()} targets for a batch of {batch} images")
    return TargetScorer(classes=check_classes(classes, batch, num_classes))
