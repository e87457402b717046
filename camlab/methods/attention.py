"""Attention-gradient maps of vision transformers: LeGrad.

LeGrad reads the attention probabilities of the last transformer blocks, not the target layer.
``nn.MultiheadAttention`` returns its probabilities as a view made after it has used them, so the
gradient of anything downstream with respect to that view is not defined; the forward hook makes
the block's output a function of the probabilities it returns by recomputing the attention output
from them (probabilities x values, output projection), which is what the module computed.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle
from torchvision.models import VisionTransformer

from ..checks import run_model
from ..context import CAMContext, installed
from ..errors import CamlabError
from ..registry import Cost, Family, register_method
from ..targets import TargetScorer

PREFIX_TOKENS = 1  # torchvision's ViT: one class token before the patch tokens


def vision_transformer(model: nn.Module) -> VisionTransformer:
    """The torchvision ``VisionTransformer`` inside ``model`` (the model itself or a wrapped one)."""
    for module in model.modules():
        if isinstance(module, VisionTransformer):
            return module
    raise CamlabError("LeGrad reads the attention of a torchvision VisionTransformer (vit_b_16 and its kin); "
                      "this model has none")


def attention_blocks(vit: VisionTransformer, count: int) -> list[nn.Module]:
    """The last ``count`` encoder blocks (all, when the model has fewer), each with a batch-first
    self-attention that LeGrad can replay."""
    if not 1 <= count <= 1024:
        raise CamlabError(f"legrad blocks must be between 1 and 1024, got {count}")
    chosen = list(vit.encoder.layers)[-count:]
    for block in chosen:
        attention = getattr(block, "self_attention", None)
        if (not isinstance(attention, nn.MultiheadAttention) or not attention.batch_first
                or attention.in_proj_weight is None or attention.bias_k is not None or attention.add_zero_attn):
            raise CamlabError("LeGrad needs each block's self_attention to be a batch-first nn.MultiheadAttention "
                              "with one input projection and no added key/value tokens")
    return chosen


def replayed_attention(probabilities: list[torch.Tensor]) -> tuple[Callable, Callable]:
    """A forward pre-hook asking the attention for its per-head probabilities and a forward hook that
    keeps them (as a leaf requiring gradients) and recomputes the output from them."""

    def ask(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if len(args) != 3:  # torchvision's blocks call attention(x, x, x, need_weights=False)
            raise CamlabError("LeGrad needs the attention called as attention(query, key, value, ...), "
                              "with its flags as keywords")
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def replay(module: nn.MultiheadAttention, args: tuple, _kwargs: dict, output: tuple) -> tuple:
        query, key, value = args
        if not (query is key is value):
            raise CamlabError("LeGrad explains self-attention; this block attends to another sequence")
        attention = output[1].detach().requires_grad_()  # (N, heads, queries, keys)
        n, tokens, dim = value.shape
        heads = module.num_heads
        bias = None if module.in_proj_bias is None else module.in_proj_bias[2 * dim :]
        values = F.linear(value, module.in_proj_weight[2 * dim :], bias)
        values = values.view(n, tokens, heads, dim // heads).transpose(1, 2)
        mixed = (attention @ values).transpose(1, 2).reshape(n, tokens, dim)
        probabilities.append(attention)
        return module.out_proj(mixed), None

    return ask, replay


class LeGradRecording:
    """LeGrad's reading of one forward: the attention probabilities of the last ``blocks`` blocks (as
    leaves requiring gradients, the blocks' outputs recomputed from them) and each block's output tokens;
    :meth:`finish` turns them into the patch maps. Made before the forward, so a model LeGrad cannot
    read fails before any pass."""

    def __init__(self, model: nn.Module, blocks: int) -> None:
        self.vit = vision_transformer(model)
        self.blocks = attention_blocks(self.vit, blocks)
        self.probabilities: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    def install(self) -> list[RemovableHandle]:
        """The hooks on each chosen block; a new forward starts a new reading."""
        self.probabilities.clear()
        self.outputs.clear()
        ask, replay = replayed_attention(self.probabilities)
        handles = []
        for block in self.blocks:
            self_attention = block.get_submodule("self_attention")
            handles.append(self_attention.register_forward_pre_hook(ask, with_kwargs=True))
            handles.append(self_attention.register_forward_hook(replay, with_kwargs=True))
            handles.append(block.register_forward_hook(lambda _m, _i, out: self.outputs.append(cast(torch.Tensor, out))))
        return handles

    def finish(self, scorer: TargetScorer) -> torch.Tensor:
        """The (N, side, side) LeGrad map: one backward per block from its own score to its attention,
        each keeping the graph (the shared backward, if any, runs after)."""
        if len(self.probabilities) != len(self.blocks):
            raise CamlabError("LeGrad's blocks did not each run once during the forward pass")
        relevance = []
        for attention, tokens in zip(self.probabilities, self.outputs):
            score = scorer(self.vit.heads(self.vit.encoder.ln(tokens.mean(dim=1)))).sum()
            (grad,) = torch.autograd.grad(score, attention, retain_graph=True)
            relevance.append(grad.clamp(min=0).mean(dim=(1, 2))[:, PREFIX_TOKENS:])
        patches = relevance[0].shape[1]
        side = math.isqrt(patches)
        if side * side != patches:
            raise CamlabError(f"LeGrad found {patches} patch tokens: not a square grid")
        return torch.stack(relevance).mean(dim=0).view(-1, side, side)


@register_method("legrad", family=Family.GRADIENT_CAM, cost=Cost.SHARED_FORWARD, recorder=LeGradRecording)
def legrad(ctx: CAMContext, *, blocks: int = 4) -> torch.Tensor:
    """LeGrad (Bousselham et al. 2024): positive gradients of each block's own class score w.r.t. its attention, averaged.

    For each of the last ``blocks`` encoder blocks of a torchvision ViT (all, when it has fewer), the block's own score is the
    model's head on the layer-normed mean of the block's output tokens; its gradient with respect to
    the block's post-softmax attention probabilities is ReLU'd and averaged over heads and queries,
    the class token's key is dropped, and the patch maps are averaged over the blocks, as torchcam's
    ``LeGrad`` (the attention values are not multiplied in). It reads the attention, not the target
    layer: the map is at the patch grid. The shared forward records it (:class:`LeGradRecording`), then
    one backward per block through that block; a context of another pass runs its own forward.
    """
    if "legrad" in ctx.recorded:
        return ctx.recorded["legrad"]
    recording = LeGradRecording(ctx.model, blocks)
    with torch.enable_grad():
        with installed([recording]):
            run_model(ctx.model, ctx.inputs)
        return recording.finish(ctx.scorer)
