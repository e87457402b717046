"""Draw occlusion walls and watch which CAMs see through them."""
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from streamlit_drawable_canvas import st_canvas

from camlab import CamlabError, list_methods, resolve_device
from camlab.appkit import leakage_rows, open_model, run_methods, shipped_models
from camlab.data import StackedDataset
from camlab.plotting import overlay
from camlab.walls import FILLS, BlindModel, check_wall, shapes_from_canvas, wall_mask

CANVAS = 448
st.set_page_config(page_title="camlab · Walls", layout="wide")
device = str(resolve_device(None))
st.sidebar.markdown(f"**Device:** `{device}`")


@st.cache_resource
def cached_model(name: str, device: str):
    return open_model(name, device)


st.title("Walls")
st.write("Draw walls on the image. *Blind*: the model cannot see behind them (the pixels are replaced "
         "before it runs). *Measure*: the model sees everything and the wall only marks where leakage "
         "is measured. A walled model's dead zone is always measured.")
models = shipped_models()
name = st.sidebar.selectbox("Model", models, index=models.index("masked_vgg") if "masked_vgg" in models else 0)
entry = cached_model(name, device)
size = entry.loaded.input_size
index = st.sidebar.number_input("Sample image", 0, 799, 1)
fast = [m.name for m in list_methods() if not m.slow and not m.pixel_space]
methods = st.sidebar.multiselect("Methods", fast, default=["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"])
meaning = st.sidebar.radio("The wall…", ["measure", "blind"], help="blind: the model cannot see behind it")
fill = st.sidebar.selectbox("Fill behind a blinding wall", FILLS, disabled=meaning != "blind")
mode = st.sidebar.radio("Draw", ["rect", "polygon", "freedraw"], horizontal=True)
alpha = st.sidebar.slider("Heatmap opacity", 0.0, 1.0, 0.5)

image, _ = StackedDataset("stack-shapes", "test", size=size)[int(index)]
background = Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype("uint8")).resize((CANVAS, CANVAS))
left, right = st.columns([1, 2])
with left:
    st.caption("Draw here (undo / clear with the canvas toolbar)")
    canvas = st_canvas(fill_color="rgba(255, 255, 255, 0.35)", stroke_width=12, stroke_color="#ffffff",
                       background_image=background, drawing_mode=mode, height=CANVAS, width=CANVAS,
                       key=f"walls-{index}")
drawn = wall_mask(shapes_from_canvas(canvas.json_data, size / CANVAS), size, size).to(device)
measured = drawn | entry.dead_zone
if not methods:
    st.info("Pick at least one method in the sidebar.")
    st.stop()
try:
    if meaning == "blind":
        check_wall(drawn, (size, size))
        blind = BlindModel(entry.loaded.model, drawn, fill=fill).to(device)
        result = run_methods(entry, image.to(device), methods, model=blind, layer=f"model.{entry.loaded.default_layer}")
    else:
        result = run_methods(entry, image.to(device), methods)
except CamlabError as exc:
    st.info(f"{exc}" if meaning == "blind" else str(exc))
    st.stop()
if not measured.any():
    st.info("No wall yet: draw one on the image (this model has no dead zone of its own).")
    st.stop()
rows = leakage_rows(result, measured)
with right:
    columns = st.columns(3)
    for i, method in enumerate(methods):
        with columns[i % 3]:
            st.image(overlay(image, result[method].display[0].cpu(), alpha, measured.cpu()), caption=method)
            st.metric(f"{method} leakage", f"{rows[method]['dead_zone_l2']:.3f}")
figure = go.Figure(go.Bar(x=list(rows), y=[r["dead_zone_l2"] for r in rows.values()]))
figure.update_layout(title="Leakage ‖S·W‖₂ / ‖S‖₂ per method", yaxis_range=[0, 1], height=320)
st.plotly_chart(figure, use_container_width=True)
st.dataframe({m: {k: round(v, 4) for k, v in r.items()} for m, r in rows.items()})
