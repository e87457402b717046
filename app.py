"""camlab home: the shipped walled VGG on a stacked image, CAMs side by side with leakage."""
import streamlit as st

from camlab import CamlabError, list_methods, resolve_device
from camlab.appkit import open_model, run_methods, shipped_models
from camlab.data import StackedDataset
from camlab.metrics import dead_zone_ratio
from camlab.plotting import load_image, overlay

FAST_METHODS = [m.name for m in list_methods() if not m.slow and not m.pixel_space]

st.set_page_config(page_title="camlab", layout="wide")


@st.cache_resource
def cached_model(name: str, device: str):
    return open_model(name, device)


def main() -> None:
    device = resolve_device(None)
    st.sidebar.markdown(f"**Device:** `{device}`" + (" (GPU)" if device.type == "cuda" else " (no GPU found)"))
    st.title("camlab — can CAMs see through walls?")
    st.write(
        "The shipped **masked VGG** cannot use the bottom band of the image (its first dense layer "
        "has zero weights for the bottom 9 of 14 feature rows; the unseen region is computed, white "
        "outline). Methods that average gradients over channels still light that band up."
    )
    shipped = shipped_models()
    name = st.sidebar.selectbox("Model", shipped, index=shipped.index("masked_vgg") if "masked_vgg" in shipped else 0)
    entry = cached_model(name, str(device))
    loaded, zone = entry.loaded, entry.dead_zone
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
    result = run_methods(entry, image.to(device), methods)
    probabilities = result.logits.softmax(1)[0]
    top = int(result.classes[0])
    st.subheader(f"Prediction: {loaded.class_names[top]} ({100 * float(probabilities[top]):.1f}%)")
    columns = st.columns(min(4, len(methods)))
    for i, method in enumerate(methods):
        cam = result[method]
        with columns[i % len(columns)]:
            st.image(overlay(image, cam.display[0].cpu(), alpha, zone.cpu()), caption=method, use_container_width=True)
            if zone.any():
                st.metric("dead-zone leakage ‖S·W‖/‖S‖", f"{float(dead_zone_ratio(cam.display, zone)[0]):.3f}")
            st.caption(f"{1000 * (cam.seconds + result.shared_seconds):.0f} ms")


main()
