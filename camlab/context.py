"""What a method receives: the shared pass's tensors plus lazy access to extra passes."""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.hooks import RemovableHandle

from .checks import check_logits
from .errors import CamlabError
from .layers import differentiate, forward_layout, hooked_forward
from .reshape import LayerLayout, Reshape, layout_for
from .targets import TargetScorer, TargetSpec, resolve_targets

T = TypeVar("T")

# pytorch-grad-cam's test-time augmentations for aug_smooth (ttach's order): horizontal flip x input times 0.9, 1, 1.1
AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1))


class ForwardRecording(Protocol):
    """What a method records during the shared forward beyond layer outputs (LeGrad: attention).

    ``install()`` puts its hooks in before the forward and returns their handles (removed right after
    it); the forward then records a graph from the first tensor a hook made differentiable on.
    ``finish(scorer)`` runs once the targets are known, before the shared backward frees the graph, and
    returns what the method reads as ``ctx.recorded[name]``; any backward it runs keeps the graph."""

    def install(self) -> list[RemovableHandle]:
        """Put the hooks in for the next forward; their handles."""
        ...

    def finish(self, scorer: TargetScorer) -> torch.Tensor:
        """What the method reads, from the forward just run and the resolved targets."""
        ...


@contextlib.contextmanager
def installed(recordings: Sequence[ForwardRecording]) -> Iterator[None]:
    """The recordings' hooks in place for the forward run inside, removed after it however it ends."""
    handles = [handle for recording in recordings for handle in recording.install()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


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
    ``reshape`` is the caller's reading of layer outputs, for :meth:`derive` at another layer.
    ``layer_contexts`` holds the contexts of other layers recorded by the same pass (the layers the
    chosen methods named before it, :attr:`camlab.registry.MethodInfo.extra_layers`), for :meth:`at_layer`;
    ``recorded`` what the methods' forward recordings finished into (:class:`ForwardRecording`), by method.
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
    reshape: Reshape = None
    layer_contexts: dict[str, CAMContext] = field(default_factory=dict, repr=False)
    recorded: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
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
            logits, (output,) = hooked_forward(self.model, [(self.layer_name, self.layer)], images, need_grads=True)
            total = score(check_logits(logits, images.shape[0])).sum()
            (grad,) = differentiate(total, [output], "the target layer", create_graph)
        return output, grad

    def derive(self, inputs: torch.Tensor | None = None, layer: tuple[str, nn.Module] | None = None,
               need_grads: bool = True, need_input_grads: bool = False,
               on_chunk: Callable[[int, int], None] | None = None) -> CAMContext:
        """The context of a fresh forward/backward on other ``inputs`` or at another ``(name, layer)``
        (default: this batch's), explaining the same classes (or callable target) as this one."""
        name, module = (self.layer_name, self.layer) if layer is None else layer
        others = [(other, known.layer) for other, known in self.layer_contexts.items() if other != name]
        return shared_pass(self.model, name, module, self.inputs if inputs is None else inputs, scorer=self.scorer,
                           reshape=self.reshape, need_grads=need_grads, need_input_grads=need_input_grads,
                           chunk_size=self.chunk_size, on_chunk=self.on_chunk if on_chunk is None else on_chunk,
                           extra_layers=others)

    def at_layer(self, layer: tuple[str, nn.Module], need_grads: bool) -> CAMContext:
        """The batch's context at another ``(name, layer)``: the one this pass recorded there, or a
        fresh forward/backward (:meth:`derive`) when it recorded none (or no gradients that are needed)."""
        known = self.layer_contexts.get(layer[0])
        if known is not None and (known.gradients is not None or not need_grads):
            return known
        return self.derive(layer=layer, need_grads=need_grads)

    def augmentation_mean(self, compute: Callable[[CAMContext], torch.Tensor], need_grads: bool,
                          need_input_grads: bool) -> torch.Tensor:
        """``compute``'s raw map averaged over :data:`AUGMENTATIONS`, each flipped back (pytorch-grad-cam's
        ``aug_smooth``): a fresh pass per augmented batch, explaining this batch's classes. The mean is of
        the signed raw maps, so a cell the model cannot read stays exactly 0 for the methods that give it
        0; pytorch-grad-cam averages the maps after ReLU, upsampling and min-max, and re-picks the top
        class of each augmented image."""
        total = len(AUGMENTATIONS)
        mean: torch.Tensor | None = None
        for index, (flip, factor) in enumerate(AUGMENTATIONS):
            def progress(done: int, count: int, index: int = index) -> None:  # one bar over all augmentations
                self.chunk_done(index * count + done, total * count)

            if flip or factor != 1.0:
                images = self.inputs * factor
                ctx = self.derive(inputs=images.flip(-1) if flip else images, need_grads=need_grads,
                                  need_input_grads=need_input_grads, on_chunk=progress)
            else:
                ctx = dataclasses.replace(self, on_chunk=progress)  # the batch itself: its pass is done
            raw = compute(ctx)
            raw = raw.flip(-1) if flip else raw
            mean = raw / total if mean is None else mean + raw / total
        assert mean is not None
        return mean

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """Compute an extra pass once per batch, whichever method asks first (one key, one type)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return cast(T, self._cache[key])


def shared_pass(model: nn.Module, layer_name: str, layer: nn.Module, images: torch.Tensor, *,
                scorer: TargetScorer | None = None, targets: TargetSpec = None, reshape: Reshape = None,
                need_grads: bool = True, need_input_grads: bool = False, chunk_size: int = 64,
                on_chunk: Callable[[int, int], None] | None = None,
                extra_layers: Sequence[tuple[str, nn.Module]] = (),
                recordings: Mapping[str, ForwardRecording] | None = None) -> CAMContext:
    """One forward (and backward when ``need_grads`` or ``need_input_grads``) of ``images`` with the
    layer hooked, as a context: the target score is ``scorer``'s, or resolved from ``targets`` on
    these logits. ``extra_layers`` are recorded by the same forward and backward, each as a context
    in ``layer_contexts``; ``recordings`` (by method) by the same forward, into ``recorded``. The model
    is expected frozen for attribution (only the hooked layers' outputs, what the recordings make
    differentiable and, when asked, the input need gradients)."""
    need_grads = need_grads or need_input_grads
    recordings = dict(recordings or {})
    hooked = [(layer_name, layer), *extra_layers]
    layouts: dict[int, LayerLayout] = {}
    x = forward_layout(model, images.detach(), reshape).requires_grad_(need_input_grads)
    with installed(list(recordings.values())):
        # unreadable outputs fail in the hook, before any backward
        output, activations = hooked_forward(model, hooked, x, need_grads,
                                             lambda index, out: layouts.setdefault(index, layout_for(out, reshape)),
                                             record_graph=bool(recordings))
    logits = check_logits(output, images.shape[0])
    scorer = resolve_targets(targets, logits.detach()) if scorer is None else scorer
    with torch.enable_grad():
        recorded = {method: recording.finish(scorer).detach() for method, recording in recordings.items()}
    gradients: list[torch.Tensor | None] = [None] * len(hooked)
    input_gradients = None
    if need_grads:
        wrt = [*activations, x] if need_input_grads else activations
        with torch.enable_grad():
            score = scorer(logits).sum()
        grads = differentiate(score, wrt, "the target layer")
        gradients = [layouts[index].to_map(grad) for index, grad in enumerate(grads[: len(hooked)])]
        input_gradients = grads[-1].contiguous() if need_input_grads else None  # the caller's layout
    contexts = [CAMContext(model=model, inputs=images.detach(), layer_name=name, layer=module, logits=logits.detach(),
                           scorer=scorer, activations=layouts[index].to_map(activations[index].detach()),
                           gradients=gradients[index], input_gradients=input_gradients, chunk_size=chunk_size,
                           layer_output=activations[index].detach(), layout=layouts[index], on_chunk=on_chunk,
                           reshape=reshape)
                for index, (name, module) in enumerate(hooked)]
    contexts[0].layer_contexts = {ctx.layer_name: ctx for ctx in contexts[1:]}
    contexts[0].recorded = recorded
    return contexts[0]
