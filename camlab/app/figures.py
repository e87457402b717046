"""Plotly figures for the app's pages: heatmaps with hover values, bars, scatters and curves."""
from __future__ import annotations

import base64

import plotly.graph_objects as go
import torch

from ..render import outlined, png_bytes


def heatmap_figure(image: torch.Tensor, heat: torch.Tensor, title: str = "", opacity: float = 0.5,
                   zmax: float | None = None, region: torch.Tensor | None = None, height: int = 340):
    """A plotly figure: the image (region outlined) under a hoverable heatmap. ``zmax`` fixes the
    colour range to [0, zmax] so several figures share one scale; None scales to this map."""
    # The picture travels as one PNG: plotly draws a `source` image directly, while `z` pixels are
    # serialised and rasterised in the browser (most of a rerun's time on a small CPU).
    base = "data:image/png;base64," + base64.b64encode(png_bytes(outlined(image, region))).decode()
    values = heat.detach().cpu().numpy()
    top = float(values.max()) if zmax is None else zmax
    figure = go.Figure([
        go.Image(source=base, hoverinfo="skip"),
        go.Heatmap(z=values, zmin=0.0, zmax=top if top > 0 else 1.0, colorscale="Jet", opacity=opacity,
                   hovertemplate="x %{x}, y %{y}<br>value %{z:.4g}<extra></extra>", colorbar={"thickness": 10}),
    ])
    figure.update_layout(title={"text": title, "font": {"size": 14}}, height=height,
                         margin={"l": 0, "r": 0, "t": 30, "b": 0})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure


def bar_chart(values: dict[str, float], title: str, height: int = 320, y_range=(0, 1)):
    """One bar per method."""
    figure = go.Figure(go.Bar(x=list(values), y=list(values.values())))
    figure.update_layout(title=title, yaxis_range=list(y_range) if y_range else None, height=height,
                         margin={"t": 40, "b": 0})
    return figure


def scatter_chart(points: dict[str, tuple[float, float]], title: str, x_title: str, y_title: str,
                  height: int = 340):
    """One labelled point per method."""
    figure = go.Figure(go.Scatter(x=[p[0] for p in points.values()], y=[p[1] for p in points.values()],
                                  mode="markers+text", text=list(points), textposition="top center"))
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=height)
    return figure


def insertion_deletion_figure(curves: dict[str, dict[str, list[float]]], title: str = "", height: int = 360):
    """Insertion (solid) and deletion (dotted) probability curves per method against the fraction
    of pixels inserted or deleted; ``curves[method]`` has ``insertion`` and ``deletion`` lists."""
    figure = go.Figure()
    for method, pair in curves.items():
        steps = len(pair["insertion"]) - 1
        fractions = [i / steps for i in range(steps + 1)]
        figure.add_scatter(x=fractions, y=pair["insertion"], name=f"{method} insertion")
        figure.add_scatter(x=fractions, y=pair["deletion"], name=f"{method} deletion", line={"dash": "dot"})
    figure.update_layout(title=title, xaxis_title="fraction of pixels inserted / deleted",
                         yaxis_title="class probability", height=height, margin={"t": 40 if title else 20})
    return figure


def histogram(values: list[float], x_title: str, y_title: str, bins: int = 20, height: int = 320):
    figure = go.Figure(go.Histogram(x=values, nbinsx=bins))
    figure.update_layout(xaxis_title=x_title, yaxis_title=y_title, height=height)
    return figure


def sweep_figure(rows: list[dict], height: int = 360):
    """Accuracy against the gradient/guided distance (mean +- std over held-out images), one point per λ."""
    figure = go.Figure(go.Scatter(
        x=[r["distance_mean"] for r in rows], y=[100 * r["accuracy"] for r in rows],
        error_x={"type": "data", "array": [r["distance_std"] for r in rows]}, mode="markers+text+lines",
        text=[f"λ={r['lambda']:g}" for r in rows], textposition="top center"))
    figure.update_layout(title="The regulariser's trade-off (held-out test images)", height=height,
                         xaxis_title="gradient / guided-gradient distance (lower: more readable)",
                         yaxis_title="test accuracy (%)")
    return figure


def training_curve(steps: list[dict], height: int = 300):
    """Cross-entropy, gradient distance and batch accuracy per optimiser step of a short run."""
    figure = go.Figure()
    x = list(range(1, len(steps) + 1))
    for key, name in (("ce", "cross-entropy"), ("grad_distance", "gradient distance"), ("batch_accuracy", "batch accuracy")):
        figure.add_scatter(x=x, y=[s[key] for s in steps], name=name, mode="lines+markers")
    figure.update_layout(xaxis_title="step", height=height, margin={"t": 20})
    return figure
