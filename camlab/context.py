"""What a method receives: the shared pass's tensors plus lazy access to extra passes."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, cast

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from .checks import check_logits
from .errors import CamlabError
from .layers import differentiate, hooked_forward
from .reshape import LayerLayout
from .targets import TargetScorer

T = TypeVar("T")


@dataclass
class CAMContext:
    """Everything one batch's methods may read. Tensors live on the model's device.

    ``activations`` and ``gradients`` are the target layer's output and d(score)/d(output)
    from the single shared forward/backward, read as (N, C, h, w) maps; ``input_gradients`` is
    d(score)/d(input) from the same backward when a pixel-space method asked for it;
    ``layer_output`` is the layer's output as the model produced it and ``layout`` how it reads as
    maps and back (:mod:`camlab.reshape`), for methods that feed changed maps to the rest of the model.
    Methods that run many chunks of extra forwards report each finished chunk through
    :meth:`chunk_done` (a progress bar, or a scheduler that lets other work run in between).
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
    layer_output: torch.Tensor | None = None
    layout: LayerLayout = LayerLayout("maps")
    on_chunk: Callable[[int, int], None] | None = None
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def scores(self) -> torch.Tensor:
        """The target score of each image on the unperturbed input, shape (N,)."""
        return self.scorer(self.logits)

    def chunk_done(self, done: int, total: int) -> None:
        """``done`` of ``total`` (image, channel) pairs of a per-channel method are scored."""
        if self.on_chunk is not None:
            self.on_chunk(done, total)

    @property
    def layer_gradients(self) -> torch.Tensor:
        """``gradients``, for a method registered with ``needs_gradients=True``."""
        if self.gradients is None:
            raise CamlabError("this method reads the layer's gradients: register it with needs_gradients=True")
        return self.gradients

    @property
    def pixel_gradients(self) -> torch.Tensor:
        """``input_gradients``, for a method registered with ``needs_input_gradients=True``."""
        if self.input_gradients is None:
            raise CamlabError("this method reads the input gradients: register it with needs_input_gradients=True")
        return self.input_gradients

    def layer_pass(self, score: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor | None = None,
                   create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A forward and backward of their own for ``score(logits)`` (one value per image), on ``inputs``
        (default: the batch's): the layer's output and d(score)/d(output), in the layer's own layout;
        with ``create_graph`` the gradient stays differentiable (Hessian-vector products)."""
        images = self.inputs if inputs is None else inputs
        # Fused attention kernels have no second derivative; the math kernel computes the same attention.
        kernels = sdpa_kernel(SDPBackend.MATH) if create_graph else contextlib.nullcontext()
        with torch.enable_grad(), kernels:
            logits, output = hooked_forward(self.model, self.layer, images, need_grads=True)
            total = score(check_logits(logits, images.shape[0])).sum()
            (grad,) = differentiate(total, [output], "the target layer", create_graph)
        return output, grad

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """Compute an extra pass once per batch, whichever method asks first (one key, one type)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return cast(T, self._cache[key])
