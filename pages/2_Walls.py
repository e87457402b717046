"""Walls: draw occlusion walls and watch which CAMs see through them."""
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas

from camlab import CamlabError
from camlab.appkit import digest, explain_cached, leakage_rows
from camlab.plotting import outlined, overlay
from camlab.walls import FILLS, BlindModel, check_wall, shapes_from_canvas, wall_mask
from pages._shared import FAST_CAMS, device, image_picker, leave_folder_mode, model_picker

leave_folder_mode()

CANVAS = 448
st.title("Walls")
st.write("Draw walls on the image. *Blind*: the model cannot see behind them (the pixels are replaced "
         "before it runs). *Measure*: the model sees everything and the wall only marks where leakage "
         "is measured. A walled model's dead zone is always measured and cannot be drawn away.")
where = device()
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

# The dead zone is part of the background, outlined: always shown, never an editable shape.
background = Image.fromarray(outlined(image, entry.dead_zone)).resize((CANVAS, CANVAS))
left, right = st.columns(2)  # the canvas keeps its pixel size, so its column must fit it
with left:
    st.caption("Draw walls here (undo, redo and clear: the canvas toolbar)"
               + ("; white outline: the model's dead zone, always measured" if entry.dead_zone.any() else ""))
    canvas = st_canvas(fill_color="rgba(255, 255, 255, 0.35)", stroke_width=12, stroke_color="#ffffff",
                       background_image=background, drawing_mode=mode, height=CANVAS, width=CANVAS,
                       key=f"walls-{entry.key}-{digest(image)}")  # a new image starts with no walls
drawn = wall_mask(shapes_from_canvas(canvas.json_data, size / CANVAS), size, size).to(where)
measured = drawn | entry.dead_zone
if not methods:
    st.info("Pick at least one method in the sidebar.")
    st.stop()
try:
    if meaning == "blind":
        check_wall(drawn, (size, size))
        blind = BlindModel(entry.loaded.model, drawn, fill=fill).to(where)
        result = explain_cached(entry, image, methods, model=blind, variant=f"blind:{fill}:{digest(drawn)}")
    else:
        result = explain_cached(entry, image, methods)
except CamlabError as exc:
    st.info(str(exc))
    st.stop()
if not measured.any():
    st.info("No wall yet: draw one on the image (this model has no dead zone of its own).")
    st.stop()
rows = leakage_rows(result, measured)
with right:
    figure = go.Figure(go.Bar(x=list(rows), y=[r["dead_zone_l2"] for r in rows.values()]))
    figure.update_layout(title="Leakage ‖S·W‖₂ / ‖S‖₂ per method", yaxis_range=[0, 1], height=300,
                         margin={"t": 40, "b": 0})
    st.plotly_chart(figure)
    st.dataframe({m: {k: round(v, 4) for k, v in r.items()} for m, r in rows.items()})
columns = st.columns(min(5, len(methods)))
for i, method in enumerate(methods):
    with columns[i % len(columns)]:
        st.image(overlay(image, result[method].display[0], alpha, measured), caption=method)
        st.metric(f"{method} leakage", f"{rows[method]['dead_zone_l2']:.3f}")
