"""Training: a standard model next to one trained with the interpretable-gradients regulariser."""
import streamlit as st

from camlab import CamlabError
from camlab.app.figures import heatmap_figure, sweep_figure, training_curve
from camlab.app.state import explain_cached, fine_tune, predict, readouts_cached
from camlab.app.text import escape_markdown
from camlab.app.training import gradient_views, guided_sweep
from camlab.app.widgets import FAST_CAMS, image_picker, page_setup, shipped_picker, show_error
from camlab.render import overlay

device = page_setup("Training: interpretable gradients")
st.write(
    "The regularised model was fine-tuned with **L = CE + λ · (1 − cos(∇ₓ z_y, guided ∇ₓ z_y))**: cross-entropy "
    "in train mode, plus the cosine distance between the plain input gradient of the true class's logit and "
    "the guided-backprop gradient of the same logit (a fixed target, per image, over all pixels and colours), "
    "both taken in eval mode — the gradients explanations see. Below, both models explain the same image and "
    "class on one colour scale per method (its top at the 99th percentile of both models' values, so a few "
    "extreme pixels do not leave the maps black); the white outline is the object the generator drew."
)
standard = shipped_picker(device, "Standard model", "baseline_vgg", key="standard")
guided = shipped_picker(device, "Regularised model", "guided_vgg", key="guided")
cams = st.sidebar.multiselect("CAMs", FAST_CAMS, default=["gradcam", "hirescam"])
picked = image_picker(standard.loaded.input_size, default_index=2)
if picked is None:
    st.stop()
image, objects = picked.image.to(device), picked.objects
names = standard.loaded.class_names
label = st.selectbox("Explain class", range(len(names)), format_func=names.__getitem__,
                     index=int(predict(standard, image).argmax()))

entries = [("Standard", standard), ("Regularised", guided)]
views, tops = gradient_views([entry for _, entry in entries], image, label, objects)
for (title, entry), view in zip(entries, views):
    card = entry.loaded.card
    st.markdown(f"#### {title}: {escape_markdown(entry.loaded.name)}")
    columns = st.columns([1, 1, 1])
    for column, method in zip(columns, ("gradient", "guided_backprop")):
        column.plotly_chart(heatmap_figure(image, view.maps[method], method, 0.85, tops[method], objects, height=300),
                            key=f"{title}-{method}", config={"displayModeBar": False})
    with columns[2]:
        st.metric("gradient/guided distance, this image", f"{view.distance:.3f}",
                  help="1 − cosine similarity; lower means the plain gradient looks more like the guided one")
        if view.object_energy:
            st.metric("gradient energy on the object", f"{100 * view.object_energy['gradient']:.0f}%",
                      help=f"the guided gradient puts {100 * view.object_energy['guided_backprop']:.0f}% there; "
                      f"the object covers {100 * float(objects.float().mean()):.0f}% of the image")
        st.caption(f"Model card: test accuracy {100 * card.get('test_accuracy', float('nan')):.2f}%, "
                   f"distance {card.get('test_gradient_guided_distance', float('nan')):.3f} on held-out images.")
    if cams:
        result = explain_cached(entry, image, cams, target=label)
        readouts = readouts_cached(entry, image, result, label, steps=8)
        row = st.columns(len(cams))
        for column, method in zip(row, cams):
            column.image(overlay(image, result[method].display[0], 0.5), caption=method)
            r = readouts[method]
            column.caption(f"AD {r['average_drop']:.1f} (matched {r['average_drop_matched']:.1f}) · "
                           f"AD@20% {r['average_drop@20']:.1f} · ins {r['insertion_auc']:.3f} · del {r['deletion_auc']:.3f}")

sweep = guided_sweep()
st.divider()
st.subheader("The trade-off: λ against accuracy and readability")
if sweep:
    st.plotly_chart(sweep_figure(sweep), key="sweep")
    st.table({f"λ = {r['lambda']:g}": {"accuracy %": round(100 * r["accuracy"], 2),
                                       "distance": f"{r['distance_mean']:.3f} ± {r['distance_std']:.3f}",
                                       "gradient energy on object %": round(100 * r["object_energy_gradient"], 1),
                                       "object area %": round(100 * r["object_area"], 1)} for r in sweep})
else:
    st.info("No sweep results yet: see README (python -m camlab.study.gradients … --out docs/results/guided_sweep.csv).")

st.divider()
st.subheader("Train a short run yourself")
st.write(f"Fine-tunes a copy of {escape_markdown(standard.loaded.name)} with the regulariser (batch 8, augmentation "
         "off), showing "
         "each step's cross-entropy, gradient distance and batch accuracy, then measures accuracy and the distance "
         "on 32 test images before and after. A few steps move the distance only a little; the shipped model had "
         "a full fine-tune (see its card).")
left, middle, right = st.columns(3)
weight = left.slider("λ (regulariser weight)", 0.0, 32.0, 8.0, 1.0)
steps = middle.slider("Steps", 2, 60, 10)
learning_rate = right.select_slider("Learning rate", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3], value=3e-4)
if st.button("Train", type="primary"):
    bar, chart = st.progress(0.0, text="measuring the starting model…"), st.empty()
    history = []

    def report(done: int, total: int, stats: dict) -> None:
        """Each optimiser step's numbers into the bar and the curve."""
        history.append(stats)
        bar.progress(done / total, text=f"step {done}/{total}: CE {stats['ce']:.3f}, distance {stats['grad_distance']:.3f}")
        chart.plotly_chart(training_curve(history), key=f"curve-{done}")

    try:
        tuned, run = fine_tune(standard, steps, weight, learning_rate, device, on_step=report)
        # the per-step curve drawn live, not the run's own summary (which has one point per epoch)
        st.session_state["trained"] = {**run, "entry": tuned, "history": history}
    except CamlabError as exc:
        show_error(exc, "The run could not train: ")
    bar.empty()
    chart.empty()
trained = st.session_state.get("trained")
if trained:
    before, after = trained["before"], trained["after"]
    st.plotly_chart(training_curve(trained["history"]), key="curve")
    cols = st.columns(2)
    cols[0].metric("accuracy on 32 test images", f"{100 * after['accuracy']:.1f}%",
                   f"{100 * (after['accuracy'] - before['accuracy']):+.1f} points")
    cols[1].metric("gradient/guided distance on 32 test images", f"{after['grad_distance']:.4f}",
                   f"{after['grad_distance'] - before['grad_distance']:+.4f}", delta_color="inverse")
    view = gradient_views([trained["entry"]], image, label, objects)[0][0]
    st.plotly_chart(heatmap_figure(image, view.maps["gradient"], "your run: gradient", 0.85, tops["gradient"], objects,
                                   height=300), key="yours", config={"displayModeBar": False})
