"""The unseen region: input pixels a model's output provably cannot depend on, computed from its structure."""
from __future__ import annotations

import copy

import torch
from torch import nn

_LINEARISED = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid,
               nn.Sigmoid, nn.Tanh, nn.Dropout, nn.ELU)


def _linearised_copy(model: nn.Module) -> nn.Module:
    """A copy where every path from input to output carries a strictly positive weight.

    Weights become |w| (exact zeros stay zero), biases |b| + 1, nonlinearities identities, and
    max-pools average pools over the same windows. In this copy d(sum of logits)/d(pixel) is a sum
    of positive path products, so it is zero exactly when no path connects the pixel to the output.
    """
    twin = copy.deepcopy(model).eval()
    for name, module in list(twin.named_modules()):
        replacement = None
        if isinstance(module, _LINEARISED):
            replacement = nn.Identity()
        elif isinstance(module, nn.MaxPool2d):
            replacement = nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
        elif isinstance(module, nn.AdaptiveMaxPool2d):
            replacement = nn.AdaptiveAvgPool2d(module.output_size)
        if replacement is not None and name:
            parent, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, child, replacement)
    with torch.no_grad():
        for pname, param in twin.named_parameters():
            param.abs_()
            if pname.endswith("bias"):
                param.add_(1)
        for bname, buffer in twin.named_buffers():
            if bname.endswith("running_mean"):
                buffer.zero_()
    return twin


def unseen_region(model: nn.Module, input_shape: tuple[int, int, int] = (3, 224, 224)) -> torch.Tensor:
    """Boolean (H, W) mask of input pixels the model's output provably cannot depend on.

    Structural receptive-field propagation through a linearised, all-positive copy of the model
    (see :func:`_linearised_copy`); exact for models built from convolutions, linear layers, pooling
    and element-wise activations as modules. The model itself is not modified.
    """
    device = next(model.parameters()).device
    twin = _linearised_copy(model).to(device)
    x = torch.ones((1, *input_shape), device=device, dtype=torch.float64, requires_grad=True)
    twin = twin.double()
    (grad,) = torch.autograd.grad(twin(x).sum(), x)
    return (grad[0].abs().sum(dim=0) == 0).cpu()
