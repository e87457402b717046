"""Turning the user's ``targets`` argument into a scorer over logits."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

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
        if self.fn is not None:
            scores = self.fn(logits)
            if not isinstance(scores, torch.Tensor) or scores.shape != logits.shape[:1]:
                raise CamlabError(
                    "a callable target must return one score per row of logits "
                    f"(shape ({logits.shape[0]},)), got {getattr(scores, 'shape', type(scores))}"
                )
            return scores
        classes = self.classes if rows is None else self.classes[rows]
        return logits.gather(1, classes[:, None])[:, 0]


def resolve_targets(targets: TargetSpec, logits: torch.Tensor) -> TargetScorer:
    """``None``: each image's top class; int: that class for all; list/tensor: one per image; callable."""
    batch, num_classes = logits.shape
    if targets is None:
        return TargetScorer(classes=logits.argmax(dim=1))
    if callable(targets) and not isinstance(targets, torch.Tensor):
        return TargetScorer(classes=None, fn=targets)
    if isinstance(targets, bool):
        raise CamlabError("targets must be a class index, a list of them, a callable or None, not a bool")
    if isinstance(targets, int):
        classes = torch.full((batch,), targets, dtype=torch.long, device=logits.device)
    else:
        try:
            classes = torch.as_tensor(targets, dtype=torch.long, device=logits.device).flatten()
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CamlabError(f"targets {targets!r} are not class indices") from exc
        if classes.numel() != batch:
            raise CamlabError(f"got {classes.numel()} targets for a batch of {batch} images")
    if bool(((classes < 0) | (classes >= num_classes)).any()):
        raise CamlabError(f"target classes must lie in [0, {num_classes - 1}], got {classes.tolist()}")
    return TargetScorer(classes=classes)
