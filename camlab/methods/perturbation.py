"""Gradient-free CAMs that score perturbed copies: Score-CAM, its smoothed and integrated variants
(SS-CAM, IS-CAM) and Ablation-CAM.

All are batched on the device: the (image, channel) pairs of the whole batch are flattened and
run in chunks of ``ctx.chunk_size`` forwards, scores stay on the device, and nothing syncs with
the host per sample.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..context import CAMContext
from ..errors import CamlabError
from ..maps import minmax
from ..registry import Cost, Family, register_method
from .combine import channel_sum, gaussian_draws, pair_chunks, sample_count, seeded_generator, weighted_channels


@register_method("scorecam", family=Family.PERTURBATION_CAM, cost=Cost.PER_CHANNEL)
@torch.no_grad()
@channel_sum
def scorecam(ctx: CAMContext) -> torch.Tensor:
    """Score-CAM (Wang et al. 2020), weights = softmax over channels of the target logit on the
    input masked by each channel's upsampled (align-corners), min-max normalised activation,
    as in pytorch-grad-cam.

    A flat channel (max == min) masks the input to zeros, so all flat channels share one forward
    of a zero image instead of one each: same result, fewer forwards on sparse ReLU layers.
    """
    acts, inputs = ctx.activations, ctx.inputs
    n, k = acts.shape[:2]
    size = inputs.shape[-2:]
    low = acts.flatten(2).amin(dim=2)
    high = acts.flatten(2).amax(dim=2)
    flat = (high == low).flatten()
    scores = torch.empty(n * k, device=acts.device, dtype=inputs.dtype)
    pairs = torch.arange(n * k, device=acts.device)
    flat_count = int(flat.sum())  # one host sync, before the loop
    if flat_count:
        zero_logits = ctx.model(torch.zeros_like(inputs[:1])).expand(n, -1)
        zero_scores = ctx.scorer(zero_logits)
        scores[flat] = zero_scores[pairs[flat] // k]
    for chunk, done in pair_chunks(pairs[~flat], ctx.chunk_size):
        image, channel = chunk // k, chunk % k
        masks = F.interpolate(acts[image, channel][:, None], size=size, mode="bilinear", align_corners=True)
        m_low = masks.flatten(1).amin(dim=1)[:, None, None, None]
        m_high = masks.flatten(1).amax(dim=1)[:, None, None, None]
        masks = (masks - m_low) / (m_high - m_low + 1e-8)
        # Channels-last input lets oneDNN/cuDNN pick their faster NHWC kernels (~1.3x on a 2-core CPU).
        masked = (inputs[image] * masks).contiguous(memory_format=torch.channels_last)
        scores[chunk] = ctx.scorer(ctx.model(masked), rows=image)
        ctx.chunk_done(flat_count + done, n * k)
    weights = torch.softmax(scores.view(n, k), dim=1)
    return weighted_channels(weights, acts)


def layer_normalised_masks(acts: torch.Tensor, image: torch.Tensor, channel: torch.Tensor,
                           size: tuple[int, int]) -> torch.Tensor:
    """The Score-CAM masks of torchcam (M, 1, H, W): each (image, channel) activation min-max normalised at the
    layer's resolution, then upsampled bilinearly with half-pixel centres.

    pytorch-grad-cam (and camlab's ``scorecam``) upsamples with aligned corners first and normalises
    after; the two masks differ by the interpolation grid, so the weights differ slightly.
    """
    maps = acts[image, channel][:, None]
    return F.interpolate(minmax(maps), size=size, mode="bilinear", align_corners=False)


def masked_score_weights(ctx: CAMContext, samples: int,
                         masked_inputs: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                         ) -> torch.Tensor:
    """Channel weights (N, K): softmax over channels of the target score of ``masked_inputs(sample,
    masks, image)``, averaged over ``samples``, the masks torchcam's (:func:`layer_normalised_masks`).

    The (sample, image, channel) triples of the whole batch run in chunks of ``ctx.chunk_size``
    forwards, sample after sample, so each sample's draws come in the order of its pairs.
    """
    n, k = ctx.activations.shape[:2]
    pairs = n * k
    size = (ctx.inputs.shape[-2], ctx.inputs.shape[-1])
    total = torch.zeros(pairs, device=ctx.inputs.device, dtype=ctx.inputs.dtype)
    for chunk, done in pair_chunks(torch.arange(samples * pairs, device=ctx.inputs.device), ctx.chunk_size):
        sample, pair = chunk // pairs, chunk % pairs
        image = pair // k
        masks = layer_normalised_masks(ctx.activations, image, pair % k, size)
        # Channels-last input lets oneDNN/cuDNN pick their faster NHWC kernels (~1.3x on a 2-core CPU).
        masked = masked_inputs(sample, masks, image).contiguous(memory_format=torch.channels_last)
        total.index_add_(0, pair, ctx.scorer(ctx.model(masked), rows=image))
        ctx.chunk_done(done, samples * pairs)
    return torch.softmax(total.view(n, k) / samples, dim=1)


@register_method("sscam", family=Family.PERTURBATION_CAM, cost=Cost.PER_CHANNEL)
@torch.no_grad()
@channel_sum
def sscam(ctx: CAMContext, *, samples: int = 35, noise: float = 2.0, seed: int = 0) -> torch.Tensor:
    """SS-CAM (Wang et al. 2020): Score-CAM whose masks carry Gaussian noise, scores averaged over ``samples``.

    torchcam's definition and defaults: noise of standard deviation ``noise`` is added to each
    upsampled, normalised mask (:func:`layer_normalised_masks`) and the noisy mask multiplies the input;
    weights are the softmax over channels of the mean masked score (torchcam subtracts the unmasked
    score first, which a softmax ignores). Seeded, from a CPU generator on every device: at input sizes
    whose pixel count is a multiple of 16 the draws are torchcam's after ``torch.manual_seed(seed)``.
    """
    sample_count("sscam", samples)
    if noise < 0:
        raise CamlabError(f"sscam noise must be >= 0, got {noise}")
    generator = seeded_generator("sscam", seed)

    def noisy(_sample: torch.Tensor, masks: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return (masks + noise * gaussian_draws(generator, tuple(masks.shape), masks)) * ctx.inputs[image]

    return weighted_channels(masked_score_weights(ctx, samples, noisy), ctx.activations)


@register_method("iscam", family=Family.PERTURBATION_CAM, cost=Cost.PER_CHANNEL)
@torch.no_grad()
@channel_sum
def iscam(ctx: CAMContext, *, samples: int = 10) -> torch.Tensor:
    """IS-CAM (Naidu et al. 2020): Score-CAM with each mask integrated over ``samples`` growing copies.

    Copy i multiplies the input by the mask times c_i = sum_{j<=i} j / samples, the running sum
    of the paper's algorithm and torchcam's (so c grows to (samples + 1) / 2); weights are the softmax
    over channels of the mean score, on torchcam's masks (:func:`layer_normalised_masks`).
    """
    sample_count("iscam", samples)
    steps = torch.arange(1, samples + 1, device=ctx.inputs.device, dtype=ctx.inputs.dtype)
    coefficients = torch.cumsum(steps / samples, dim=0)

    def integrated(sample: torch.Tensor, masks: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return coefficients[sample].view(-1, 1, 1, 1) * masks * ctx.inputs[image]

    return weighted_channels(masked_score_weights(ctx, samples, integrated), ctx.activations)


class _StopAt(fx.Tracer):
    """Traces through everything except the target layer, which stays one call."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:  # torch.fx's own parameter names
        return module_qualified_name == self.target or super().is_leaf_module(m, module_qualified_name)


def build_tail(model: nn.Module, layer_name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The part of ``model`` after ``layer_name`` as a module from that layer's output to logits.

    Returns None when the model cannot be split there: not traceable by torch.fx, the layer runs
    more than once, or a later layer reads a tensor computed before it (e.g. a skip connection
    around the target layer).
    """
    try:
        graph = _StopAt(layer_name).trace(model)
    except Exception:  # fx raises many types on untraceable code; the fallback is always correct
        return None
    nodes = list(graph.nodes)
    hits = [i for i, node in enumerate(nodes) if node.op == "call_module" and node.target == layer_name]
    if len(hits) != 1:
        return None
    target = nodes[hits[0]]
    before = set(nodes[: hits[0]])
    tail = fx.Graph()
    env = {target: tail.placeholder("activation")}
    for node in nodes[hits[0] + 1 :]:
        for dep in node.all_input_nodes:
            if dep in before:
                if dep.op != "get_attr":
                    return None
                env.setdefault(dep, tail.node_copy(dep))
        env[node] = tail.node_copy(node, lambda dep: env[dep])
    return fx.GraphModule(model, tail)


def _full_model_tail(ctx: CAMContext, image: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Fallback tail: re-run the whole model with the layer's output swapped for the given one."""

    def run(replacement: torch.Tensor) -> torch.Tensor:
        handle = ctx.layer.register_forward_hook(lambda _m, _i, _o: replacement)
        try:
            return ctx.model(ctx.inputs[image])
        finally:
            handle.remove()

    return run


@register_method("ablationcam", family=Family.PERTURBATION_CAM, cost=Cost.PER_CHANNEL)
@torch.no_grad()
@channel_sum
def ablationcam(ctx: CAMContext) -> torch.Tensor:
    """Ablation-CAM (Desai & Ramaswamy 2020): weight_k = (y - y_k) / y, with y_k the score when
    channel k is ablated.

    Ablation value as in pytorch-grad-cam: 0 when the image's activations have minimum 0 (post-ReLU
    layers), else (minimum - 1e7); 0 for transformer tokens and channels-last maps, whose
    normalised features make -1e7 overflow in attention. pytorch-grad-cam lowers that value by
    another 1e7 for each further row of a batch; we use one value, which gives identical scores whenever a ReLU or
    max-pool follows. Only the layers after the target layer are re-run when torch.fx can split
    the model there; otherwise the whole model runs with the target output replaced.
    """
    acts, output = ctx.activations, ctx.layer_output
    if output is None:
        raise CamlabError("Ablation-CAM re-runs the layer's output: the shared pass did not keep it")
    n, k = acts.shape[:2]
    low = acts.flatten(1).amin(dim=1)
    ablation_value = torch.where(low == 0, torch.zeros_like(low), low - 1e7)
    if ctx.layout.kind != "maps":  # transformer features (after a LayerNorm): 0 is neutral, -1e7 overflows attention
        ablation_value = torch.zeros_like(low)
    tail = ctx.cached("tail", lambda: build_tail(ctx.model, ctx.layer_name))
    scores = torch.empty(n * k, device=acts.device, dtype=acts.dtype)
    for chunk, done in pair_chunks(torch.arange(n * k, device=acts.device), ctx.chunk_size):
        image, channel = chunk // k, chunk % k
        ablated = acts[image].clone()
        ablated[torch.arange(chunk.numel(), device=acts.device), channel] = ablation_value[image, None, None]
        run = tail if tail is not None else _full_model_tail(ctx, image)
        scores[chunk] = ctx.scorer(run(ctx.layout.to_output(ablated, output[image])), rows=image)
        ctx.chunk_done(done, n * k)
    original = ctx.scores[:, None]
    weights = (original - scores.view(n, k)) / original
    return weighted_channels(weights, acts)
