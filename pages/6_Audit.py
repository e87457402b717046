"""Audit: every readout against its controls over your own images, and a report to hand over."""
import streamlit as st
import streamlit.components.v1 as components
from streamlit_drawable_canvas import st_canvas

from camlab import CamlabError
from camlab.app.audit import MAX_PAGE_IMAGES, MAX_ZIP_BYTES, audit_on_page, first_image
from camlab.app.canvas import drawn_regions
from camlab.app.walls import canvas_background
from camlab.app.widgets import FAST_CAMS, model_picker, page_setup, show_error, weights_warning

CANVAS = 336
device = page_setup("Audit")
st.write("Run every readout of the chosen methods over a set of images — each method against its matched "
         "control, a random smooth map, the all-zero map and Random-CAM, with 95% intervals; leakage under a "
         "wall; the sanity check; whether the model stays in distribution under the metrics' own "
         "perturbations — and download a report anyone can open offline. "
         f"Here: up to {MAX_PAGE_IMAGES} images; `camlab-audit` on the command line takes any folder.")
entry = model_picker(device)
if entry is None:
    st.stop()
weights_warning(entry)
source = st.sidebar.radio("Images", ["generated test split", "zip upload"], horizontal=True)
zip_data = masks_zip = None
if source == "zip upload":
    upload = st.file_uploader(f"A zip of images (at most {MAX_ZIP_BYTES // 2**20} MiB): one folder per class, named "
                              "as the model's classes, or a flat folder (the maps then explain the predicted class)",
                              type=["zip"])
    if upload is None:
        st.info("Upload a zip of images, or pick the generated test split in the sidebar.")
        st.stop()
    zip_data = upload.getvalue()
    mask_upload = st.file_uploader("Optional: a zip of the images' object masks, for localisation — the same "
                                   "folders and names (the mask of cat/001.jpg is cat/001.png), bright on the object",
                                   type=["zip"], key="audit-masks")
    masks_zip = None if mask_upload is None else mask_upload.getvalue()
count = st.sidebar.slider("Images of the generated split", 4, 100, 20, step=4, disabled=zip_data is not None)
methods = st.sidebar.multiselect("Methods", FAST_CAMS, default=["gradcam", "hirescam", "layercam"])
steps = st.sidebar.select_slider("Insertion/deletion steps", [4, 8, 16], value=8)
draw = st.sidebar.checkbox("Wall: draw one on the first image",
                           help="applied to every image as a feature wall at the chosen layer; each method's "
                                "leakage on the walled cells is reported")
layer_names = [name for name, _ in entry.layers]
default_layer = entry.loaded.default_layer if entry.loaded.default_layer in layer_names else layer_names[-1]
wall_layer = st.sidebar.selectbox("Walled layer", layer_names, index=layer_names.index(default_layer), disabled=not draw)
if not methods:
    st.info("Pick at least one method in the sidebar.")
    st.stop()

wall = None
if draw:
    try:
        image = first_image(entry, zip_data)
    except CamlabError as exc:
        show_error(exc, "No image to draw on: ")
        st.stop()
    size = entry.loaded.input_size
    canvas = st_canvas(fill_color="rgba(255, 221, 0, 0.3)", stroke_width=12, stroke_color="#ffdd00",
                       background_image=canvas_background(entry, image, None, CANVAS), drawing_mode="rect",
                       height=CANVAS, width=CANVAS, key=f"audit-wall-{entry.key}")
    st.caption("Drag rectangles over what the model must not read; undo and clear are in the canvas toolbar.")
    try:
        regions = drawn_regions(canvas.json_data, size / CANVAS, size)
    except CamlabError as exc:
        show_error(exc, "That wall cannot be used: ")
        st.stop()
    for region in regions:
        wall = region if wall is None else wall | region

settings = (entry.key, source, len(zip_data or b""), len(masks_zip or b""), count, tuple(methods), steps,
            wall_layer if draw else None, None if wall is None else int(wall.sum()))
if st.button("Run the audit", type="primary"):
    bar = st.progress(0.0, text="reading the images…")
    try:
        files, images = audit_on_page(entry, methods, zip_data=zip_data, masks_zip=masks_zip, count=count, wall=wall,
                                      wall_layer=wall_layer,
                                      steps=steps, device=device, on_batch=lambda done, total: bar.progress(
                                          done / total, text=f"{done} of {total} images"))
        st.session_state["audit"] = (settings, files, len(images.items), len(images.skipped))
    except CamlabError as exc:
        show_error(exc, "The audit could not run: ")
    bar.empty()

stored = st.session_state.get("audit")
if stored is None:
    st.info("Press *Run the audit*.")
    st.stop()
ran_with, files, read, skipped = stored
if ran_with != settings:
    st.warning("The settings changed since this audit; press the button to rerun.")
st.success(f"Audited {read} images" + (f"; {skipped} file(s) skipped (named in the report)" if skipped else "") + ".")
columns = st.columns(4)
mimes = {"report.html": "text/html", "readouts.csv": "text/csv", "summary.csv": "text/csv",
         "manifest.json": "application/json"}
for column, (name, text) in zip(columns, files.items()):
    column.download_button(f"Download {name}", text, file_name=name, mime=mimes[name])
components.html(files["report.html"], height=1200, scrolling=True)  # the file as it opens offline
