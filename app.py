"""camlab's main page, Explore: one model, one image, several CAM methods side by side with live readouts.

Start the app with ``make app`` (or ``streamlit run app.py``); the other pages are in ``pages/``.
"""
from functools import partial

import streamlit as st

from camlab import CamlabError, get_method
from camlab.app.figures import colour_range, heatmap_figure, heatmap_picture, insertion_deletion_chart
from camlab.app.state import (
    MAX_LAYER_NAME_CHARS,
    MAX_SAMPLES,
    MAX_SEED,
    PASS_OPTIONS,
    SMOOTHINGS,
    MethodSettings,
    cached_methods,
    check_layer,
    default_layer,
    explain_cached,
    heatmaps,
    image_verdicts,
    model_record,
    predict,
    readouts_cached,
    readouts_table,
    scalar_readouts,
    top_classes,
)
from camlab.app.text import escape_markdown
from camlab.app.widgets import (
    FAST_CAMS,
    PIXEL_METHODS,
    SLOW_CAMS,
    SLOW_METHODS,
    image_picker,
    method_label,
    model_picker,
    page_setup,
    show_error,
    weights_warning,
)
from camlab.export import manifest, maps_npz, overlay_png, tensor_sha256

device = page_setup("Explore — can CAMs see through walls?")
st.write(
    "The shipped **masked VGG** cannot use the bottom band of the image: its first dense layer has zero "
    "weights for the bottom 9 of 14 feature rows (the computed unseen region is outlined in white). "
    "Methods that average gradients over channels still light that band up; HiRes-CAM and Layer-CAM stay dark. "
    "Why the outline covers only about a quarter of the image although 9 of 14 rows are walled: each feature "
    "cell sees a patch of pixels far larger than itself (its receptive field), so the 5 rows the head reads still "
    "see most of the image, and only the bottom 54 of 224 pixel rows are out of their reach."
)
entry = model_picker(device)
if entry is None:
    st.stop()
weights_warning(entry)
loaded, unseen = entry.loaded, entry.unseen
picked = image_picker(loaded.input_size)
if picked is None:
    st.stop()
image, image_source = picked.image, picked.source
image = image.to(device)

methods = st.sidebar.multiselect("Methods", FAST_CAMS + SLOW_CAMS + PIXEL_METHODS, format_func=method_label,
                                 default=["gradcam", "gradcam++", "hirescam", "layercam"],
                                 help="(slow) methods run one pass per channel or per noisy sample and are computed on request")
layer_names = [name for name, _ in entry.layers]
layer = st.sidebar.selectbox("Target layer", layer_names, index=layer_names.index(default_layer(entry)),
                             format_func=lambda n: f"{n} {dict(entry.layers)[n]}")
typed = st.sidebar.text_input("…or type a layer name", max_chars=MAX_LAYER_NAME_CHARS,
                              help="dotted module name, e.g. features.40")
smoothing = tuple(st.sidebar.multiselect(
    "Smoothing", SMOOTHINGS, help="grad-cam's options, for every chosen method that takes them: eigen_smooth, the "
    "first principal component of a CAM's channel terms; aug_smooth, the mean over six flipped and rescaled copies "
    "of the image (six passes)"))
sampled = [m for m in methods if {"seed", *PASS_OPTIONS} & set(get_method(m).options)]
samples, seed = None, 0
if sampled:
    with st.sidebar.expander("Sampled methods", expanded=False):
        choice = st.select_slider("Samples", ["default", 4, 8, 16, 32, MAX_SAMPLES], value="default",
                                  help="noisy copies, masks per channel or integration steps of "
                                  f"{', '.join(sampled)}; default: each method's own (SS-CAM 35, IG 50 steps, …). "
                                  "Per channel for SS-CAM and IS-CAM: the cost is samples × channels")
        samples = None if choice == "default" else int(choice)
        seed = int(st.number_input("Seed", min_value=0, max_value=MAX_SEED, value=0, step=1,
                                   help="the random numbers of every method that draws them: another seed shows how "
                                   "much a map depends on the draw"))
with_readouts = st.sidebar.toggle("Faithfulness readouts", value=True,
                                  help="Average Drop / Increase / Gain and insertion/deletion AUC for this image")
steps = st.sidebar.select_slider("Insertion/deletion steps", [4, 8, 16, 32], value=8, disabled=not with_readouts)

try:
    settings = MethodSettings(smoothing, samples, seed)
except CamlabError as exc:
    show_error(exc)
    st.stop()
if typed.strip():
    try:
        layer = check_layer(entry, typed.strip())
    except CamlabError as exc:
        show_error(exc)
        st.stop()
if not methods:
    st.info("Pick at least one method in the sidebar.")
    st.stop()

ranked = top_classes(predict(entry, image), loaded.class_names, k=len(loaded.class_names))
probability = {index: p for index, _, p in ranked}
target = st.selectbox("Explain class (most probable first)", [index for index, _, _ in ranked],
                      format_func=lambda i: f"{loaded.class_names[i]} — {100 * probability[i]:.1f}%")
top = ranked[0]
st.caption(f"Model **{escape_markdown(loaded.name)}** ({escape_markdown(loaded.architecture)}) predicts "
           f"**{escape_markdown(top[1])}** ({100 * top[2]:.1f}%); image: {escape_markdown(image_source)}; "
           f"layer `{layer}`.")

ready = cached_methods(entry, image, layer, target, settings)
pending_slow = [m for m in methods if m in SLOW_METHODS and m not in ready]
if pending_slow:
    costs = ", ".join(f"{m}: {get_method(m).cost.value}" for m in pending_slow)
    request = st.empty()  # the button, then the progress, then nothing once the maps are shown
    with request.container():
        pressed = st.button(f"Compute {', '.join(pending_slow)}", help=costs)
    if pressed:
        with request.container():
            # Any click reruns the page, which stops the computation after its current chunk.
            st.button("Cancel", help="stop computing; nothing is kept")
            bar = st.progress(0.0, text=f"Running {', '.join(pending_slow)} ({costs})…")
        try:
            explain_cached(entry, image, pending_slow, layer, target, on_progress=lambda done, total: bar.progress(
                done / total, text=f"{', '.join(pending_slow)}: {done} of {total} passes done"), settings=settings)
        except CamlabError as exc:
            show_error(exc)
            st.stop()
        request.empty()
        pending_slow = []
shown = [m for m in methods if m not in pending_slow]
if not shown:
    st.info("Slow methods are computed on request: press the button above.")
    st.stop()
try:
    with st.spinner(f"Computing {', '.join(shown)}…"):
        result = explain_cached(entry, image, shown, layer, target, settings=settings)
except CamlabError as exc:
    show_error(exc)
    st.stop()

readouts_bar = st.empty()  # a bar only while readouts compute; cached ones show at once
try:
    readouts = readouts_cached(entry, image, result, target, unseen, steps, layer=layer, on_progress=lambda done, total:
                               readouts_bar.progress(done / total, text=f"Readouts and their controls: {done} of {total} "
                                                     "stages (each map and control goes through the model)"),
                               settings=settings) if with_readouts else {}
    readouts_bar.empty()
except CamlabError as exc:
    show_error(exc, "No faithfulness readouts for this view: ")
    readouts = {}


@st.fragment
def maps_view() -> None:
    """The heatmaps and what depends on how they are drawn: changing the scale or the opacity reruns only this."""
    left, middle, right = st.columns(3)
    scale = left.radio("Colour scale", ["per map", "shared"], horizontal=True,
                       help="per map: each map min-max scaled to [0, 1]. shared: every map in its method's own "
                       "units (ReLU, upsampled) on one range — compare methods of one family")
    alpha = middle.slider("Heatmap opacity", 0.0, 1.0, 0.5)
    interactive = right.toggle("Hover values", help="interactive figures that show the map's value under the "
                               "pointer (slower to draw on a small machine than the pictures)")
    heat, zmax = heatmaps(result, shared_scale=scale == "shared")
    has_unseen = bool(unseen.any())
    verdicts = image_verdicts(readouts)
    columns = st.columns(min(3, len(shown)))
    for i, method in enumerate(shown):
        with columns[i % len(columns)]:
            if interactive:
                st.plotly_chart(heatmap_figure(image, heat[method], method, alpha, zmax, unseen),
                                key=f"figure-{method}", config={"displayModeBar": False})
            else:
                st.markdown(f"**{method}**")
                st.image(heatmap_picture(image, heat[method], alpha, zmax, unseen))
            row = readouts.get(method, {})
            if has_unseen:
                value = row.get("leakage_l2") if row else None
                st.metric(f"{method} leakage ‖S·W‖/‖S‖", f"{value:.3f}" if value is not None else "—",
                          help="share of the map's L2 norm inside the unseen region")
            seconds = f"{1000 * result[method].total_seconds:.0f} ms"
            if row:
                st.caption(" · ".join(f"{label} {'✓' if beats else '✗'}" for label, beats in verdicts.get(method, [])))
                st.caption(f"AD {row['average_drop']:.1f} (matched control {row['average_drop_matched']:.1f}) · "
                           f"AD@20% {row['average_drop@20']:.1f} · IC {row['increase_in_confidence']:.0f} · "
                           f"AG {row['average_gain']:.1f} · ins {row['insertion_auc']:.3f} · "
                           f"del {row['deletion_auc']:.3f} · {seconds}")
                for note in row["notes"]:
                    st.warning(escape_markdown(note, limit=1000), icon=":material/warning:")
            else:
                st.caption(seconds)
            values, top = colour_range(heat[method], zmax)  # the file shows what the page shows
            st.download_button("overlay PNG", partial(overlay_png, image, values / top, alpha, unseen, method, top),
                               file_name=f"{loaded.name}-{method}.png", mime="image/png", key=f"png-{method}",
                               on_click="ignore")

    metrics = scalar_readouts(readouts)
    record = partial(manifest, model=model_record(entry), architecture=loaded.architecture, layer=layer,
                     target_class=target, class_name=loaded.class_names[target], methods=shown, metrics=metrics,
                     image={"source": image_source, "sha256": tensor_sha256(image)}, device=device,
                     extra_versions={"streamlit": st.__version__}, colour_scale=scale, insertion_deletion_steps=steps,
                     seconds={m: result[m].total_seconds for m in shown},
                     method_options=settings.options(shown))
    left, right = st.columns(2)
    left.download_button("raw maps (.npz)", partial(maps_npz, result), file_name=f"{loaded.name}-maps.npz",
                         mime="application/octet-stream", on_click="ignore")
    right.download_button("manifest (.json)", record, file_name=f"{loaded.name}-manifest.json", mime="application/json",
                          on_click="ignore")


maps_view()

if readouts:
    st.subheader("Readouts for this image, next to the controls")
    st.caption("Controls: an all-zero map, an all-ones map (AD 0 by construction), a random smooth map, and per "
               "method its *matched* control (its own values at random places: same coverage). A method is "
               "informative where it beats them; Average Drop at 20% coverage compares methods at equal area.")
    st.table(readouts_table(readouts))  # static HTML, fast to draw; it scrolls sideways when every method is picked
    curves = {m: {"insertion": r["insertion_curve"], "deletion": r["deletion_curve"]}
              for m, r in readouts.items() if "insertion_curve" in r}
    st.altair_chart(insertion_deletion_chart(curves))
