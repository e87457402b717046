"""Streamlit widgets every page shares: navigation, device line, model and image pickers, and the
resource cache that loads each model once per server.

``app.py`` is the main page (Explore) and ``pages/`` holds the others, Streamlit's supported
folder convention; its built-in page list is turned off in ``.streamlit/config.toml`` because it
would name the main page after its file ("app"), and :func:`page_setup` draws the list instead.
"""
from __future__ import annotations

from typing import NamedTuple

import streamlit as st
import torch

from ..device import resolve_device
from ..errors import CamlabError
from ..images import read_image
from ..models import TORCHVISION_MODELS, download_torchvision_weights, torchvision_weights_path
from ..registry import list_methods
from ..samples import PHOTOGRAPHS, photograph
from ..study.data import DEFAULT_LENGTHS, VARIANTS, StackedDataset
from .sources import open_shipped, open_torchvision, open_uploaded, safe_filename, shipped_models
from .state import MAX_CLASS_LIST_CHARS, ModelEntry, with_class_names
from .text import escape_markdown
from .theory import InitWallsView, init_walls_view

FAST_CAMS = [m.name for m in list_methods() if not m.slow and not m.pixel_space]
SLOW_CAMS = [m.name for m in list_methods() if m.slow and not m.pixel_space]
SLOW_METHODS = [m.name for m in list_methods() if m.slow]
PIXEL_METHODS = [m.name for m in list_methods() if m.pixel_space]

# The app's pages in navigation order: (script, title, icon).
PAGES = [
    ("app.py", "Explore", ":material/search:"),
    ("pages/2_Walls.py", "Walls", ":material/grid_on:"),
    ("pages/3_Benchmark.py", "Benchmark", ":material/bar_chart:"),
    ("pages/4_Training.py", "Training", ":material/school:"),
    ("pages/5_Theory.py", "Theory", ":material/functions:"),
    ("pages/6_Audit.py", "Audit", ":material/fact_check:"),
]


def page_setup(title: str) -> str:
    """Page config, the page list and the device line in the sidebar, the title; returns the device."""
    st.set_page_config(page_title=f"camlab · {title}", layout="wide")
    with st.sidebar.container(key="navigation"):
        for script, label, icon in PAGES:
            st.page_link(script, label=label, icon=icon)
    st.title(title)
    chosen = resolve_device(None)
    kind = "GPU" if chosen.type == "cuda" else "CPU — no GPU found"
    st.sidebar.markdown(f"**Device:** `{chosen}` ({kind})")
    return str(chosen)


@st.cache_resource(show_spinner="Loading the model…")
def shipped(name: str, device: str) -> ModelEntry:
    """A shipped model's entry, loaded once per server and device."""
    return open_shipped(name, device)


@st.cache_resource(show_spinner="Loading the torchvision model…")
def torchvision_model(arch: str, device: str, pretrained: bool) -> ModelEntry:
    """A torchvision classifier's entry (ImageNet weights, or random ones), once per server."""
    return open_torchvision(arch, device, pretrained)


@st.cache_resource(show_spinner="Initialising and walling the network…", max_entries=16)
def walls_at_init(arch: str, seeds: int) -> InitWallsView:
    """An architecture's leakage at initialisation (:func:`camlab.app.theory.init_walls_view`), once per server."""
    return init_walls_view(arch, seeds)


@st.cache_resource(show_spinner="Loading the uploaded checkpoint…", max_entries=4)
def uploaded(data: bytes, filename: str, device: str) -> ModelEntry:
    """An uploaded checkpoint's entry, cached by its bytes."""
    return open_uploaded(data, filename, device)


def shipped_picker(device: str, label: str = "Model", default: str = "masked_vgg", key: str | None = None) -> ModelEntry:
    """A sidebar choice among the shipped models; the chosen model's entry."""
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
            random = st.sidebar.checkbox("random weights", help="untrained: nothing to download, and the maps "
                                         "mean nothing")
            if not random and not torchvision_weights_path(arch).exists():
                bar = st.progress(0.0, text=f"Downloading {arch}'s ImageNet weights…")
                try:
                    def show(done: int, total: int) -> None:
                        bar.progress(min(1.0, done / total) if total else 0.0,
                                     text=f"Downloading {arch}: {done / 2**20:.0f} MiB")

                    download_torchvision_weights(arch, show)
                finally:  # offline, the error replaces the bar
                    bar.empty()
            return torchvision_model(arch, device, not random)
        file = st.sidebar.file_uploader("Checkpoint (.pt, .pth)", type=["pt", "pth"],
                                        help="a camlab checkpoint, or a torchvision state_dict named after its "
                                        "architecture (e.g. resnet18_finetuned.pt), up to 600 MB. TorchScript is "
                                        "refused: loading it would run the code inside it on this server")
        names = st.sidebar.text_area("Class names (optional)", max_chars=MAX_CLASS_LIST_CHARS,
                                     help="one per line, or a JSON list, in the model's output order — paste the "
                                     "file that came with the checkpoint; without it, the checkpoint's own names")
        if file is None:
            st.info("Upload a checkpoint in the sidebar, or pick a shipped model.")
            return None
        entry = uploaded(file.getvalue(), file.name, device)
        return with_class_names(entry, names) if names.strip() else entry
    except CamlabError as exc:
        show_error(exc, "Could not load the model: ")
        return None


class PickedImage(NamedTuple):
    """The picked image (3, H, W) in [0, 1], where it came from, and its objects' pixels when the
    generator drew it (None for uploads)."""

    image: torch.Tensor
    source: str
    objects: torch.Tensor | None = None


def image_picker(size: int, default_index: int = 0) -> PickedImage | None:
    """A generated sample or an uploaded picture, None (with a message shown) when there is none."""
    source = st.sidebar.radio("Image", ["sample", "photograph", "upload"], horizontal=True,
                              help="sample: the generated shapes the shipped models know; photograph: "
                              "scikit-image's public-domain pictures, for ImageNet models")
    if source == "photograph":
        name = st.sidebar.selectbox("Photograph", list(PHOTOGRAPHS))
        image, note = photograph(name, size)
        st.sidebar.caption(note)
        return PickedImage(image, f"photograph {name}")
    if source == "sample":
        variant = st.sidebar.selectbox("Dataset", VARIANTS)
        last = DEFAULT_LENGTHS["test"] - 1
        key = f"test-image@{default_index}"  # pages that open on different images keep their own box

        def clamp() -> None:  # the box shows the image used: 5000 becomes the last image, -3 the first
            st.session_state[key] = min(max(int(st.session_state[key]), 0), last)

        # no min/max on the widget: the browser would show a refused 5000 while the page kept the old image
        index = int(st.sidebar.number_input(f"Test image (0–{last})", value=default_index, step=1, key=key,
                                            on_change=clamp))
        image, _, objects = StackedDataset(variant, "test", size=size).with_mask(index)
        return PickedImage(image, f"{variant} test #{index}", objects)
    file = st.sidebar.file_uploader("PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "webp"])
    if file is None:
        st.info("Upload an image in the sidebar, or pick a sample.")
        return None
    try:
        image, note = read_image(file.getvalue(), size)
    except CamlabError as exc:
        show_error(exc, "Could not use this image: ")
        return None
    st.sidebar.caption(escape_markdown(note))
    return PickedImage(image, f"upload {safe_filename(file.name)} ({note})")


def weights_warning(entry: ModelEntry) -> None:
    """Say so when a model's weights are random: its maps mean nothing."""
    weights = entry.loaded.card.get("weights", "")
    if weights.startswith("random"):
        st.warning(f"{escape_markdown(entry.loaded.name)} has random weights: its maps and readouts mean nothing "
                   "until pretrained weights are loaded (untick *random weights*; they download once when the machine "
                   "is online).")


def show_error(exc: Exception, prefix: str = "") -> None:
    """An error box: ``prefix`` (the page's own words) and the exception's message, escaped (it may
    quote a file, class or layer name a visitor chose)."""
    st.error(prefix + escape_markdown(exc, limit=2000))


def method_label(name: str) -> str:
    """A method's name for a picker: its key, with (slow) for methods computed on request."""
    return f"{name} (slow)" if name in SLOW_METHODS else name
