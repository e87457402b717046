"""Walls: regions of the input a model cannot see, computed or drawn, and models blinded by them."""
from __future__ import annotations

import copy

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import CamlabError

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


# --- drawn walls ----------------------------------------------------------------------------------

FILLS = ("zero", "mean", "blur", "noise")


def wall_mask(shapes: list[dict], height: int, width: int) -> torch.Tensor:
    """Union of drawn shapes as a boolean (H, W) mask, shapes in image pixel coordinates:

    - ``{"type": "rect", "x0", "y0", "x1", "y1"}`` (corners, any order, inclusive)
    - ``{"type": "polygon", "points": [[x, y], ...]}`` (filled)
    - ``{"type": "stroke", "points": [[x, y], ...], "width": w}`` (free-hand line of width w)
    """
    canvas = np.zeros((height, width), dtype=np.uint8)
    for shape in shapes:
        kind = shape.get("type")
        try:
            if kind == "rect":
                x0, x1 = sorted((float(shape["x0"]), float(shape["x1"])))
                y0, y1 = sorted((float(shape["y0"]), float(shape["y1"])))
                cv2.rectangle(canvas, (round(x0), round(y0)), (round(x1), round(y1)), 1, -1)
            elif kind == "polygon":
                points = np.round(np.asarray(shape["points"], dtype=np.float64)).astype(np.int32)
                cv2.fillPoly(canvas, [points.reshape(-1, 2)], 1)
            elif kind == "stroke":
                points = np.round(np.asarray(shape["points"], dtype=np.float64)).astype(np.int32)
                cv2.polylines(canvas, [points.reshape(-1, 2)], False, 1, max(1, round(float(shape.get("width", 10)))))
            else:
                raise CamlabError(f"unknown wall shape {kind!r}; use rect, polygon or stroke")
        except (KeyError, TypeError, ValueError) as exc:
            raise CamlabError(f"malformed {kind} wall {shape!r}: {exc}") from exc
    return torch.from_numpy(canvas.astype(bool))


def shapes_from_canvas(json_data: dict | None, scale: float = 1.0) -> list[dict]:
    """Convert streamlit-drawable-canvas (fabric.js) objects to wall shapes in image pixels;
    ``scale`` is image pixels per canvas pixel."""
    shapes = []
    for obj in (json_data or {}).get("objects", []):
        kind = str(obj.get("type", "")).lower()  # fabric.js 6 writes "Rect", older versions "rect"
        sx, sy = obj.get("scaleX", 1.0) * scale, obj.get("scaleY", 1.0) * scale
        left, top = obj.get("left", 0.0) * scale, obj.get("top", 0.0) * scale
        if kind == "rect":
            shapes.append({"type": "rect", "x0": left, "y0": top,
                           "x1": left + obj["width"] * sx, "y1": top + obj["height"] * sy})
        elif kind == "polygon":
            # Points are relative to the polygon's centre (pathOffset), placed by left/top.
            offset = obj.get("pathOffset", {"x": 0.0, "y": 0.0})
            cx, cy = left + obj.get("width", 0.0) * sx / 2, top + obj.get("height", 0.0) * sy / 2
            shapes.append({"type": "polygon", "points": [[cx + (p["x"] - offset["x"]) * sx,
                                                           cy + (p["y"] - offset["y"]) * sy] for p in obj["points"]]})
        elif kind == "path":
            points = [[cmd[-2] * scale, cmd[-1] * scale] for cmd in obj.get("path", []) if len(cmd) >= 3]
            closed = any(cmd[0] in ("z", "Z") for cmd in obj.get("path", []))
            if points:
                shapes.append({"type": "polygon", "points": points} if closed else
                              {"type": "stroke", "points": points, "width": obj.get("strokeWidth", 10) * scale})
    return shapes


def check_wall(wall: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A boolean wall of the image's size that covers some but not all pixels, else a clear error."""
    wall = torch.as_tensor(wall)
    if tuple(wall.shape) != tuple(shape):
        raise CamlabError(f"the wall is {tuple(wall.shape)} but the image is {tuple(shape)}")
    wall = wall.bool()
    if not wall.any():
        raise CamlabError("the wall covers no pixel: draw a wall first")
    if wall.all():
        raise CamlabError("the wall covers the whole image: nothing is left for the model to see")
    return wall


class BlindModel(nn.Module):
    """Wraps a model so it cannot see behind a wall: walled pixels are replaced before it runs.

    Fills: ``zero`` (black), ``mean`` (a constant colour, e.g. the dataset mean), ``noise``
    (uniform noise from a fixed seed), ``blur`` (a blur of the *visible* pixels only, a normalised
    convolution, so no walled value leaks in). In every case the output is a function of the
    visible pixels alone.
    """

    def __init__(self, model: nn.Module, wall: torch.Tensor, fill: str = "zero",
                 mean: tuple[float, float, float] = (0.5, 0.5, 0.5), seed: int = 0, blur_kernel: int = 31):
        super().__init__()
        if fill not in FILLS:
            raise CamlabError(f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}")
        self.model, self.fill = model, fill
        self.blur_kernel, self.seed = blur_kernel | 1, seed
        wall = torch.as_tensor(wall).bool()
        self.register_buffer("wall", wall[None, None].float())
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))

    def _fill(self, x: torch.Tensor) -> torch.Tensor:
        if self.fill == "zero":
            return torch.zeros_like(x)
        if self.fill == "mean":
            return self.mean.to(x.dtype).expand_as(x)
        if self.fill == "noise":
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            return torch.rand(x.shape[1:], generator=generator).to(x)[None].expand_as(x)
        visible = 1 - self.wall.to(x.dtype)
        k = self.blur_kernel
        box = torch.ones(1, 1, k, k, dtype=x.dtype, device=x.device)
        summed = F.conv2d((x * visible).flatten(0, 1)[:, None], box, padding=k // 2).view_as(x)
        weight = F.conv2d(visible, box, padding=k // 2)
        average = (x * visible).sum((2, 3), keepdim=True) / visible.sum().clamp(min=1)
        return torch.where(weight > 0, summed / weight.clamp(min=1e-6), average)

    def blind(self, x: torch.Tensor) -> torch.Tensor:
        wall = self.wall.to(x.dtype)
        return torch.where(wall > 0, self._fill(x), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.blind(x))
