"""Walls: three kinds of wall, each with its own readout — and the model's own unseen region and wall on their own."""
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from camlab import CamlabError
from camlab.app.canvas import canvas_regions, drawn_regions
from camlab.app.figures import leakage_table, scatter_chart
from camlab.app.state import explain_cached, region_rows, widget_key
from camlab.app.text import escape_markdown
from camlab.app.walls import (
    WALL_KINDS,
    attention_shares,
    canvas_background,
    feature_wall_readout,
    occlusion_readout,
    overlays_picture,
    own_wall_readout,
    wall_analyser,
)
from camlab.app.widgets import FAST_CAMS, image_picker, model_picker, page_setup, show_error, weights_warning
from camlab.render import jpeg_bytes
from camlab.walls import OCCLUSION_FILLS, paper_wall

CANVAS = 448
device = page_setup("Walls")
st.write(
    "**Feature wall** (the paper's wall): the rest of the model cannot read the walled cells of a layer, so "
    "its output provably ignores them; a CAM that still paints them *leaks*. **Occlusion**: the pixels are "
    "replaced; a faithful map puts its mass where occlusion hurts (the model sees the fill, so this is never "
    "leakage). **Measure only**: where each map attends. White outline: the model's own unseen region; "
    "yellow: your walls."
)
entry = model_picker(device)
if entry is None:
    st.stop()
weights_warning(entry)
size = entry.loaded.input_size
picked = image_picker(size, default_index=1)
if picked is None:
    st.stop()
image = picked.image.to(device)
methods = st.sidebar.multiselect("Methods", FAST_CAMS, default=["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"])
kind = st.sidebar.radio("Kind of wall", WALL_KINDS, help="feature wall: cells of a layer nobody downstream reads; "
                        "occlusion: pixels replaced; measure only: nothing changes")
layer_names = [name for name, _ in entry.layers]
default_layer = entry.loaded.default_layer if entry.loaded.default_layer in layer_names else layer_names[-1]
layer = st.sidebar.selectbox("Walled layer", layer_names, index=layer_names.index(default_layer),
                             format_func=lambda n: f"{n} {dict(entry.layers)[n]}", disabled=kind != "feature wall")
fill = st.sidebar.selectbox("Occlusion fill", OCCLUSION_FILLS, disabled=kind != "occlusion")
mode = st.sidebar.radio("Draw", ["rect", "polygon", "freedraw"], horizontal=True,
                        help="polygon: click the corners, then the first corner again to close it")
alpha = st.sidebar.slider("Heatmap opacity", 0.0, 1.0, 0.5)
if not methods:
    st.info("Pick at least one method in the sidebar.")
    st.stop()


@st.fragment
def walls_view() -> None:
    """The canvas and everything a stroke changes: a stroke reruns only this part of the page."""
    default = paper_wall(size).to(device) if kind == "feature wall" and not own_wall else None
    key = f"walls-{widget_key(entry, image)}"
    numbered = [] if kind == "feature wall" else canvas_regions(st.session_state.get(key), size / CANVAS, size)
    left, right = st.columns(2)  # the canvas keeps its pixel size, so its column must fit it
    with left:
        canvas = st_canvas(fill_color="rgba(255, 221, 0, 0.3)", stroke_width=12, stroke_color="#ffdd00",
                           background_image=canvas_background(entry, image, default, CANVAS, numbered),
                           drawing_mode=mode, height=CANVAS, width=CANVAS, key=key)
        # below the canvas: its toolbar floats over whatever stands just above it
        st.caption("Draw walls here; undo, redo and clear are in the canvas toolbar."
                   + (" Until you draw, the paper's wall (bottom 9/14) stands in, outlined in yellow." if default is not None
                      else ""))
    try:
        regions = [region.to(device) for region in drawn_regions(canvas.json_data, size / CANVAS, size)]
    except CamlabError as exc:  # nothing is computed for a drawing that is refused
        show_error(exc, "That wall cannot be used: ")
        return
    union = None
    for region in regions:
        union = region if union is None else union | region

    with right:
        try:
            if kind == "feature wall":
                wall = union if union is not None else default
                if wall is None:
                    st.info("Draw a wall: its cells become unreadable for the rest of the model.")
                    shown, outline = explain_cached(entry, image, methods), None
                else:
                    readout = feature_wall_readout(entry, image, methods, layer, wall)
                    shown, outline = readout.result, readout.footprint
                    walled = int(readout.cells.sum())
                    st.markdown(f"**Feature wall on `{layer}`**: {walled} of {readout.cells.numel()} cells "
                                f"({readout.cells.shape[0]}×{readout.cells.shape[1]} grid) cannot be read downstream.")
                    name = escape_markdown(entry.loaded.class_names[readout.target])
                    st.metric(f"p({name}) after walling", f"{readout.p_after:.3f}", f"{readout.p_after - readout.p_before:+.3f}",
                              help=f"before walling {readout.p_before:.3f}; Drop {readout.drop:.1f}")
                    st.markdown("**Leakage on the walled cells** (share of each map's L2 norm; bars from 0 to 1)")
                    st.table(leakage_table(readout))
                    unseen_pixels = int(readout.unseen.pixels.sum())
                    if unseen_pixels:
                        st.caption(f"Pixels the walled model provably ignores: {unseen_pixels} "
                                   f"({100 * unseen_pixels / readout.unseen.pixels.numel():.0f}% of the image) — "
                                   f"{escape_markdown(readout.unseen.reason, limit=1000)}. Display leakage includes "
                                   "the bilinear upsampling's "
                                   "bleed across the wall's edge; the layer-resolution number is the exact one.")
                    else:
                        st.caption(f"Pixels the walled model provably ignores: none — "
                                   f"{escape_markdown(readout.unseen.reason, limit=1000)}. Walling "
                                   "cells is not walling pixels: the cells beside the wall still see across it "
                                   "(the paper walls 9 of 14 rows and only 54 of 224 pixel rows become unseen).")
            else:
                shown = explain_cached(entry, image, methods)
                outline = union
                if not regions:
                    st.info("Draw one or more regions on the image.")
                elif kind == "occlusion":
                    readout = occlusion_readout(entry, image, shown, regions, fill)
                    name = escape_markdown(entry.loaded.class_names[readout.target])
                    st.markdown(f"**Occlusion with {fill}**: p({name}) = {readout.p_before:.3f} on the whole image.")
                    drop, increase = st.columns(2)
                    drop.metric("Drop, region 1", f"{readout.drops[0]:.1f}", help="100 · max(0, p before − p after) / p before")
                    increase.metric("Increase, region 1", f"{readout.increases[0]:.1f}",
                                    help="100 · max(0, p after − p before) / p before: hiding it made the model surer")
                    st.table({f"region {i + 1}": {"p after": round(p, 4), "Drop": round(d, 1), "Increase": round(up, 1),
                                                  **{f"{m} mass share": round(readout.shares[m][i], 3) for m in methods}}
                              for i, (p, d, up) in enumerate(zip(readout.p_after, readout.drops, readout.increases))})
                    st.plotly_chart(scatter_chart({f"{m} · region {i + 1}": (readout.shares[m][i], readout.drops[i])
                                                   for m in methods for i in range(len(regions))},
                                                  "Map share inside a region vs Drop when it is occluded",
                                                  "share of the map's mass inside", "Drop (points)"))
                    if readout.correlation:
                        st.caption("Rank correlation of share and Drop across regions: " + ", ".join(
                            f"{m} {rho:+.2f}" for m, rho in readout.correlation.items()))
                else:
                    shares = attention_shares(shown, regions)
                    st.markdown("**Attention share** (nothing is walled: this is where each map looks, not leakage): "
                                "the share of each map's mass inside each region, which adds up to 1 over regions "
                                "that do not overlap and cover the image; beside it the L2 ratio ‖S inside‖₂ / ‖S‖₂, "
                                "the paper's measure, whose shares need not add up to 1.")
                    st.table({f"{m}": {f"region {i + 1} {kind}": round(s[key], 3) for i, s in enumerate(rows)
                                       for kind, key in (("mass share", "mass"), ("L2 ratio", "l2"))}
                              for m, rows in shares.items()})
                    for m, rows in shares.items():
                        st.metric(f"{m} attention share", f"{rows[0]['mass']:.3f}",
                                  help="share of the map's mass inside region 1: sum(S inside) / sum(S)")
        except CamlabError as exc:
            show_error(exc)
            return

    st.image(jpeg_bytes(overlays_picture(image, shown, alpha, entry.unseen, outline,
                                         regions=regions if kind != "feature wall" else ())))


own_wall = bool(entry.unseen.any())
try:
    if kind == "feature wall":
        wall_analyser(entry, layer)  # built before the first stroke, which then costs one backward pass
    original = explain_cached(entry, image, methods) if own_wall else None
    own_cells = own_wall_readout(entry, image, methods, layer) if kind == "feature wall" else None
except CamlabError as exc:  # e.g. a model whose output overflows on this image
    show_error(exc)
    st.stop()
walls_view()
if own_cells is not None:
    unread = own_cells.unread.cells
    st.subheader(f"The model's own wall on `{escape_markdown(layer)}`")
    st.caption(f"This model never reads {int(unread.sum())} of the {unread.shape[0]}×{unread.shape[1]} cells of "
               f"this layer — {escape_markdown(own_cells.unread.reason, limit=1000)} (computed and verified "
               "for this layer, whatever you draw). A map's share on them, for the unwalled input, at the layer's resolution:")
    for column, (method, share) in zip(st.columns(len(own_cells.leakage)), own_cells.leakage.items()):
        column.metric(f"{method} · own walled cells", f"{share:.3f}",
                      help="share of the ReLU'd raw map's L2 norm on the cells the model never reads")
if own_wall:
    st.subheader("The model's own unseen region")
    st.caption("This model cannot use the white-outlined pixels at all (computed and verified at load). "
               "Leakage of each map of the unwalled input:")
    own = region_rows(original, entry.unseen)
    columns = st.columns(len(methods))
    for column, method in zip(columns, methods):
        column.metric(f"{method} leakage", f"{own[method]['leakage_l2']:.3f}", help="‖S in the unseen region‖₂ / ‖S‖₂")

