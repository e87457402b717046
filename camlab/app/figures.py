"""Figures for the app's pages: heatmaps as static pictures or interactive plotly figures with
hover values; bars, scatters and curves.

Plotly's browser bundle is 4.7 MB, parsed on a page's first chart (over a second on a small CPU):
the Explore page's first render draws its maps as pictures and its curves with Vega-Lite (altair),
and plotly is there on request (hover values) and on the pages that need its interaction.
"""
from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from ..render import jet_colours, jpeg_bytes, overlay, overlay_with_scale

if TYPE_CHECKING:  # walls draws with these figures
    from .walls import FeatureWallReadout

HOVER_BLOCK = 4  # hover reads the map's mean over 4x4-pixel blocks: 1/16 of the values to send
# OpenCV's JET (the colours the overlay is painted with) as a plotly colour scale: the colour bar is the picture's own.
JET = [[i / 16, "rgb({},{},{})".format(*colour)] for i, colour in
       enumerate(jet_colours(np.linspace(0, 255, 17).round()).tolist())]


def colour_range(heat: torch.Tensor, zmax: float | None) -> tuple[torch.Tensor, float]:
    """The map on the CPU and the top of its colour range: ``zmax`` when shared, else its own maximum."""
    values = heat.detach().float().cpu()
    top = float(values.max()) if zmax is None else zmax
    return values, top if top > 0 else 1.0


def heatmap_picture(image: torch.Tensor, heat: torch.Tensor, opacity: float = 0.5, zmax: float | None = None,
                    region: torch.Tensor | None = None) -> bytes:
    """JPEG: what :func:`heatmap_figure` shows, as one static picture with its colour bar."""
    values, top = colour_range(heat, zmax)
    return jpeg_bytes(overlay_with_scale(image, values / top, opacity, region, top))


def heatmap_figure(image: torch.Tensor, heat: torch.Tensor, title: str = "", opacity: float = 0.5,
                   zmax: float | None = None, region: torch.Tensor | None = None, height: int = 340) -> go.Figure:
    """A plotly figure: the image (region outlined) under the heatmap, with the map's value on
    hover and a colour bar. ``zmax`` fixes the colour range to [0, zmax] so several figures share
    one scale; None scales to this map."""
    # The overlay travels as one JPEG that plotly draws as it is; a full-resolution `z` would be
    # serialised and rasterised in the browser (most of a first render's time on a small CPU).
    # Hover and colour bar come from an invisible heatmap of block means.
    values, top = colour_range(heat, zmax)
    picture = overlay(image, values / top, opacity, region)
    source = "data:image/jpeg;base64," + base64.b64encode(jpeg_bytes(picture)).decode()
    height_px, width_px = values.shape
    blocks = (math.ceil(height_px / HOVER_BLOCK), math.ceil(width_px / HOVER_BLOCK))
    means = F.adaptive_avg_pool2d(values[None, None], blocks)[0, 0].numpy()
    dy, dx = height_px / blocks[0], width_px / blocks[1]
    figure = go.Figure([
        go.Image(source=source, hoverinfo="skip"),
        go.Heatmap(z=means, x0=(dx - 1) / 2, dx=dx, y0=(dy - 1) / 2, dy=dy, zmin=0.0, zmax=top, colorscale=JET,
                   opacity=0.0, colorbar={"thickness": 10},
                   hovertemplate=f"x %{{x:.0f}}, y %{{y:.0f}}<br>value %{{z:.4g}} (mean of {HOVER_BLOCK}×{HOVER_BLOCK} "
                                 "pixels)<extra></extra>"),
    ])
    figure.update_layout(title={"text": title, "font": {"size": 14}}, height=height,
                         margin={"l": 0, "r": 0, "t": 30, "b": 0})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    return figure


def bar_chart(values: dict[str, float], title: str, height: int = 320,
              y_range: tuple[float, float] | None = (0, 1)) -> go.Figure:
    """One bar per method."""
    figure = go.Figure(go.Bar(x=list(values), y=list(values.values())))
    figure.update_layout(title=title, yaxis_range=list(y_range) if y_range else None, height=height,
                         margin={"t": 40, "b": 0})
    return figure


def leakage_table(readout: FeatureWallReadout) -> pd.io.formats.style.Styler:
    """A feature wall's leakage per method (rows) at layer resolution and on the display map, each
    value with a bar from 0 to 1 drawn in the table's own cells (no chart library to load)."""
    table = pd.DataFrame({m: {"leakage, walled cells": r["layer_leakage"], "leakage, display map": r["display_leakage"]}
                          for m, r in readout.leakage.items()}).T
    # pandas types format() as returning the renderer base class; it returns the Styler itself.
    styled = table.style.format("{:.4f}")
    return styled.bar(vmin=0.0, vmax=1.0, color="#f4a261", height=70, width=100)  # pyright: ignore[reportAttributeAccessIssue]


def scatter_chart(points: dict[str, tuple[float, float]], title: str, x_title: str, y_title: str,
                  height: int = 340) -> go.Figure:
    """One point per label, named in the legend (text beside close points overlapped and was
    clipped at the plot's edges), its values on hover."""
    figure = go.Figure([go.Scatter(x=[x], y=[y], mode="markers", name=label, marker={"size": 11},
                                   hovertemplate=f"{label}<br>%{{x:.3g}}, %{{y:.3g}}<extra></extra>")
                        for label, (x, y) in points.items()])
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=height)
    return figure


def insertion_deletion_figure(curves: dict[str, dict[str, list[float]]], title: str = "", height: int = 360) -> go.Figure:
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


def insertion_deletion_chart(curves: dict[str, dict[str, list[float]]], height: int = 340) -> alt.Chart:
    """:func:`insertion_deletion_figure` in Vega-Lite: one colour per method, deletion dashed."""
    rows = [{"fraction": i / (len(pair[kind]) - 1), "probability": value, "method": method, "curve": kind}
            for method, pair in curves.items() for kind in ("insertion", "deletion")
            for i, value in enumerate(pair[kind])]
    dash = alt.StrokeDash("curve", title="curve", scale=alt.Scale(domain=["insertion", "deletion"],
                                                                   range=[[1, 0], [6, 4]]))
    return alt.Chart(pd.DataFrame(rows), height=height,
                     title="Insertion (solid line: higher is better) and deletion (dashed: lower is better)").mark_line(
        point=True).encode(x=alt.X("fraction", title="fraction of pixels inserted / deleted"),
                           y=alt.Y("probability", title="class probability"),
                           color="method", strokeDash=dash, tooltip=["method", "curve", "fraction", "probability"])


def wall_maps_figure(maps: dict[str, torch.Tensor], masked_rows: int, title: str, height: int = 320) -> go.Figure:
    """Small (h, w) maps side by side, each divided by its own maximum (where the mass lies, not its
    units), a white line where the wall starts."""
    figure = make_subplots(rows=1, cols=len(maps), subplot_titles=list(maps), horizontal_spacing=0.08)
    for column, heat in enumerate(maps.values(), start=1):
        top = float(heat.max()) or 1.0
        figure.add_heatmap(z=(heat / top).detach().cpu().tolist(), zmin=0, zmax=1, colorscale=JET,
                           showscale=column == 1, colorbar={"title": "÷ max"}, row=1, col=column)
        wall = heat.shape[0] - masked_rows - 0.5
        # plotly leaves row/col unannotated, so their "all" default reads as str to a type checker
        figure.add_hline(y=wall, line={"color": "white", "width": 3}, row=1, col=column)  # pyright: ignore[reportArgumentType]
        figure.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=column)
        figure.update_xaxes(showticklabels=False, row=1, col=column)
    figure.update_layout(title=title, height=height, margin={"t": 60, "b": 10})
    return figure


def histogram(values: list[float], x_title: str, y_title: str, bins: int = 20, height: int = 320) -> go.Figure:
    """A histogram of ``values`` with ``bins`` bars."""
    figure = go.Figure(go.Histogram(x=values, nbinsx=bins))
    figure.update_layout(xaxis_title=x_title, yaxis_title=y_title, height=height)
    return figure


def sweep_figure(rows: list[dict], height: int = 360) -> go.Figure:
    """Accuracy against the gradient/guided distance (mean +- std over held-out images), one point per λ."""
    figure = go.Figure(go.Scatter(
        x=[r["distance_mean"] for r in rows], y=[100 * r["accuracy"] for r in rows],
        error_x={"type": "data", "array": [r["distance_std"] for r in rows]}, mode="markers+text+lines",
        text=[f"λ={r['lambda']:g}" for r in rows], textposition="top center", cliponaxis=False))
    figure.update_layout(title="The regulariser's trade-off (held-out test images)", height=height,
                         margin={"t": 70, "r": 40}, yaxis={"automargin": True},
                         xaxis_title="gradient / guided-gradient distance (lower: more readable)",
                         yaxis_title="test accuracy (%)")
    return figure


def training_curve(steps: list[dict], height: int = 300) -> go.Figure:
    """Cross-entropy, gradient distance and batch accuracy per optimiser step of a short run."""
    figure = go.Figure()
    x = list(range(1, len(steps) + 1))
    for key, name in (("ce", "cross-entropy"), ("grad_distance", "gradient distance"), ("batch_accuracy", "batch accuracy")):
        figure.add_scatter(x=x, y=[s[key] for s in steps], name=name, mode="lines+markers")
    figure.update_layout(xaxis_title="step", height=height, margin={"t": 20})
    return figure
