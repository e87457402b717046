"""What a method receives: the shared pass's tensors plus lazy access to extra passes."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .targets import TargetScorer


@dataclass
class CAMContext:
    """Everything one batch's methods may read. Tensors live on the model's device.

    ``activations`` and ``gradients`` are the target layer's output and d(score)/d(output)
    from the single shared forward/backward; ``input_gradients`` is d(score)/d(input) from
    the same backward when a pixel-space method asked for it.
    """

    model: nn.Module
    inputs: torch.Tensor
    layer_name: str
    layer: nn.Module
    logits: torch.Tensor
    scorer: TargetScorer
    activations: torch.Tensor
    gradients: torch.Tensor | None = None
    input_gradients: torch.Tensor | None = None
    chunk_size: int = 64
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def scores(self) -> torch.Tensor:
        """The target score of each image on the unperturbed input, shape (N,)."""
        return self.scorer(self.logits)

    def cached(self, key: str, compute: Callable[[], object]):
        """Compute an extra pass once per batch, whichever method asks first."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]
