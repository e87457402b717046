"""Walls: draw occlusion walls and watch which CAMs see through them."""
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas

from camlab import CamlabError
from camlab.app.canvas import shapes_from_canvas
from camlab.app.figures import bar_chart
from camlab.app.state import explain_cached, explain_occluded, region_rows, widget_key
from camlab.app.widgets import FAST_CAMS, image_picker, model_picker, page_setup
from camlab.render import outlined, overlay
from camlab.walls import FILLS, wall_mask

CANVAS = 448
where = page_setup("Walls")
st.write("Draw walls on the image. *Blind*: the model cannot see behind them (the pixels are replaced "
         "before it runs). *Measure*: the model sees everything and the wall only marks where leakage "
         "is measured. A walled model's unseen region is always measured and cannot be drawn away.")
entry = model_picker(where)
if entry is None:
    st.stop()
size = entry.loaded.input_size
picked = image_picker(size, default_index=1)
if picked is None:
    st.stop()
image = picked[0].to(where)
methods = st.sidebar.multiselect("Methods", FAST_CAMS, default=["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"])
meaning = st.sidebar.radio("The wall…", ["measure", "blind"], help="blind: the model cannot see behind it")
fill = st.sidebar.selectbox("Fill behind a blinding wall", FILLS, disabled=meaning != "blind")
mode = st.sidebar.radio("Draw", ["rect", "polygon", "freedraw"], horizontal=True,
                        help="polygon: click the corners, double-click to close")
alpha = st.sidebar.slider("Heatmap opacity", 0.0, 1.0, 0.5)

# The unseen region is part of the background, outlined: always shown, never an editable shape.
background = Image.fromarray(outlined(image, entry.unseen)).resize((CANVAS, CANVAS))
left, right = st.columns(2)  # the canvas keeps its pixel size, so its column must fit it
with left:
    st.caption("Draw walls here (undo, redo and clear: the canvas toolbar)"
               + ("; white outline: the model's unseen region, always measured" if entry.unseen.any() else ""))
    canvas = st_canvas(fill_color="rgba(255, 255, 255, 0.35)", stroke_width=12, stroke_color="#ffffff",
                       background_image=background, drawing_mode=mode, height=CANVAS, width=CANVAS,
                       key=f"walls-{widget_key(entry, image)}")  # a new image starts with no walls
drawn = wall_mask(shapes_from_canvas(canvas.json_data, size / CANVAS), size, size).to(where)
measured = drawn | entry.unseen
if not methods:
    st.info("Pick at least one method in the sidebar.")
    st.stop()
try:
    if meaning == "blind":
        result = explain_occluded(entry, image, methods, drawn, fill)
    else:
        result = explain_cached(entry, image, methods)
except CamlabError as exc:
    st.info(str(exc))
    st.stop()
if not measured.any():
    st.info("No wall yet: draw one on the image (this model has no unseen region of its own).")
    st.stop()
rows = region_rows(result, measured)
with right:
    st.plotly_chart(bar_chart({m: r["leakage_l2"] for m, r in rows.items()}, "Leakage ‖S·W‖₂ / ‖S‖₂ per method"))
    st.dataframe({m: {k: round(v, 4) for k, v in r.items()} for m, r in rows.items()})
columns = st.columns(min(5, len(methods)))
for i, method in enumerate(methods):
    with columns[i % len(columns)]:
        st.image(overlay(image, result[method].display[0], alpha, measured), caption=method)
        st.metric(f"{method} leakage", f"{rows[method]['leakage_l2']:.3f}")
