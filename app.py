"""camlab home: the shipped walled VGG on a stacked image, CAMs side by side with leakage."""
import threading
from pathlib import Path

import streamlit as st
import torch

from camlab import CamlabError, CAMEngine, list_methods, resolve_device
from camlab.data import CLASSES, StackedDataset
from camlab.metrics import dead_zone_ratio
from camlab.models import load_checkpoint
from camlab.plotting import load_image, overlay
from camlab.walls import unseen_region

MODELS = Path(__file__).parent / "models"
FAST_METHODS = [m.name for m in list_methods() if not m.slow and not m.pixel_space]

st.set_page_config(page_title="camlab", layout="wide")


@st.cache_resource
def load_model(name: str, device: str):
    loaded = load_checkpoint(MODELS / f"{name}.pt", device)
    zone = unseen_region(loaded.model, (3, loaded.input_size, loaded.input_size)).to(device)
    return loaded, zone, threading.Lock()  # hooks mutate the shared model: one explanation at a time


def main() -> None:
    device = resolve_device(None)
    st.sidebar.markdown(f"**Device:** `{device}`" + (" (GPU)" if device.type == "cuda" else " (no GPU found)"))
    st.title("camlab — can CAMs see through walls?")
    st.write(
        "The shipped **masked VGG** cannot use the bottom band of the image (its first dense layer "
        "has zero weights for the bottom 9 of 14 feature rows; the unseen region is computed, white "
        "outline). Methods that average gradients over channels still light that band up."
    )
    shipped = sorted(p.stem for p in MODELS.glob("*.pt"))
    name = st.sidebar.selectbox("Model", shipped, index=shipped.index("masked_vgg") if "masked_vgg" in shipped else 0)
    loaded, zone, lock = load_model(name, str(device))
    index = st.sidebar.number_input("Sample image (stack-shapes test split)", 0, 799, 0)
    upload = st.sidebar.file_uploader("…or upload an image", type=["png", "jpg", "jpeg", "webp"])
    methods = st.sidebar.multiselect("Methods", FAST_METHODS, default=["gradcam", "gradcam++", "hirescam", "layercam"])
    alpha = st.sidebar.slider("Heatmap opacity", 0.0, 1.0, 0.5)
    if upload is not None:
        try:
            image = load_image(upload.getvalue(), loaded.input_size)
        except CamlabError as exc:
            st.error(str(exc))
            return
    else:
        image, _ = StackedDataset("stack-shapes", "test", size=loaded.input_size)[int(index)]
    if not methods:
        st.info("Pick at least one method in the sidebar.")
        return
    batch = image[None].to(device)
    with lock:
        result = CAMEngine(loaded.model, loaded.default_layer).explain(batch, methods)
    probabilities = result.logits.softmax(1)[0]
    top = int(result.classes[0])
    st.subheader(f"Prediction: {loaded.class_names[top]} ({100 * float(probabilities[top]):.1f}%)")
    columns = st.columns(min(4, len(methods)))
    for i, method in enumerate(methods):
        cam = result[method]
        with columns[i % len(columns)]:
            st.image(overlay(image, cam.display[0], alpha, zone), caption=method, use_container_width=True)
            if zone.any():
                st.metric("dead-zone leakage ‖S·W‖/‖S‖", f"{float(dead_zone_ratio(cam.display, zone)[0]):.3f}")
            st.caption(f"{1000 * (cam.seconds + result.shared_seconds):.0f} ms")


main()
