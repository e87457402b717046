"""Streamlit widgets every page shares: navigation, device line, model and image pickers, and the
resource cache that loads each model once per server.

``app.py`` is the main page (Explore) and ``pages/`` holds the others, Streamlit's supported
folder convention; its built-in page list is turned off in ``.streamlit/config.toml`` because it
would name the main page after its file ("app"), and :func:`page_setup` draws the list instead.
"""
from __future__ import annotations

import streamlit as st
import torch

from ..device import resolve_device
from ..errors import CamlabError
from ..images import read_image
from ..models import TORCHVISION_MODELS
from ..registry import list_methods
from ..study.data import DEFAULT_LENGTHS, VARIANTS, StackedDataset
from .sources import open_shipped, open_torchvision, open_uploaded, shipped_models
from .state import ModelEntry

FAST_CAMS = [m.name for m in list_methods() if not m.slow and not m.pixel_space]
SLOW_CAMS = [m.name for m in list_methods() if m.slow]
PIXEL_METHODS = [m.name for m in list_methods() if m.pixel_space]

# The app's pages in navigation order: (script, title, icon).
PAGES = [
    ("app.py", "Explore", ":material/search:"),
    ("pages/2_Walls.py", "Walls", ":material/grid_on:"),
    ("pages/3_Benchmark.py", "Benchmark", ":material/bar_chart:"),
    ("pages/4_Training.py", "Training", ":material/school:"),
    ("pages/5_Theory.py", "Theory", ":material/functions:"),
]


def page_setup(title: str) -> str:
    """Page config, the page list and the device line in the sidebar, the title; returns the device."""
    st.set_page_config(page_title=f"camlab · {title}", layout="wide")
    with st.sidebar.container(key="navigation"):
        for script, label, icon in PAGES:
            st.page_link(script, label=label, icon=icon)
    st.title(title)
    chosen = resolve_device(None)
    where = "GPU" if chosen.type == "cuda" else "CPU — no GPU found"
    st.sidebar.markdown(f"**Device:** `{chosen}` ({where})")
    return str(chosen)


@st.cache_resource(show_spinner="Loading the model…")
def shipped(name: str, device: str) -> ModelEntry:
    return open_shipped(name, device)


@st.cache_resource(show_spinner="Loading the torchvision model…")
def torchvision_model(arch: str, device: str, pretrained: bool) -> ModelEntry:
    return open_torchvision(arch, device, pretrained)


@st.cache_resource(show_spinner="Loading the uploaded checkpoint…", max_entries=4)
def uploaded(data: bytes, filename: str, device: str) -> ModelEntry:
    return open_uploaded(data, filename, device)


def shipped_picker(device: str, label: str = "Model", default: str = "masked_vgg", key: str | None = None) -> ModelEntry:
    names = shipped_models()
    name = st.sidebar.selectbox(label, names, index=names.index(default) if default in names else 0, key=key)
    return shipped(name, device)


def model_picker(device: str) -> ModelEntry | None:
    """Shipped model, torchvision name or uploaded checkpoint; None (with an error shown) on failure."""
    source = st.sidebar.radio("Model source", ["shipped", "torchvision", "upload"], horizontal=True)
    try:
        if source == "shipped":
            return shipped_picker(device)
        if source == "torchvision":
            arch = st.sidebar.selectbox("torchvision model", TORCHVISION_MODELS)
            random = st.sidebar.checkbox("random weights", help="ImageNet weights load only from the local "
                                         "torch cache; nothing is downloaded")
            return torchvision_model(arch, device, not random)
        file = st.sidebar.file_uploader("Checkpoint (.pt, .pth, .ts)", type=["pt", "pth", "ts"],
                                        help="a camlab checkpoint, TorchScript, or a torchvision state_dict "
                                        "named after its architecture (e.g. resnet18_finetuned.pt)")
        if file is None:
            st.info("Upload a checkpoint in the sidebar, or pick a shipped model.")
            return None
        return uploaded(file.getvalue(), file.name, device)
    except CamlabError as exc:
        st.error(f"Could not load the model: {exc}")
        return None


def image_picker(size: int, default_index: int = 0) -> tuple[torch.Tensor, str] | None:
    """A generated sample or an uploaded picture as (3, size, size) in [0, 1], with a description."""
    source = st.sidebar.radio("Image", ["sample", "upload"], horizontal=True)
    if source == "sample":
        variant = st.sidebar.selectbox("Dataset", VARIANTS)
        index = int(st.sidebar.number_input("Test image", 0, DEFAULT_LENGTHS["test"] - 1, default_index))
        image, _ = StackedDataset(variant, "test", size=size)[index]
        return image, f"{variant} test #{index}"
    file = st.sidebar.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"])
    if file is None:
        st.info("Upload an image in the sidebar, or pick a sample.")
        return None
    try:
        image, note = read_image(file.getvalue(), size)
    except CamlabError as exc:
        st.error(f"Could not use this image: {exc}")
        return None
    st.sidebar.caption(note)
    return image, f"upload {file.name} ({note})"


def method_label(name: str) -> str:
    return f"{name} (slow)" if name in SLOW_CAMS else name
