"""Training: a standard model next to one trained with the guided-gradient regulariser."""
import streamlit as st

from camlab import CamlabError
from camlab.app.state import explain_cached, fine_tune, gradient_agreement, predict, readouts_cached
from camlab.app.widgets import FAST_CAMS, image_picker, page_setup, shipped_picker
from camlab.render import overlay

where = page_setup("Training: interpretable gradients")
st.write(
    "The guided model was fine-tuned with **L = CE + λ · (1 − cos(∇ₓ logit, guided-backprop ∇ₓ))**, which "
    "pulls the plain input gradient towards the less noisy guided-backprop one. Below, both models explain "
    "the same image and class: vanilla gradient, guided backprop and CAMs, with the gradient/guided "
    "distance for this image and the faithfulness readouts of each CAM."
)
standard = shipped_picker(where, "Standard model", "baseline_vgg", key="standard")
guided = shipped_picker(where, "Regularised model", "guided_vgg", key="guided")
cams = st.sidebar.multiselect("CAMs", FAST_CAMS, default=["gradcam", "hirescam"])
picked = image_picker(standard.loaded.input_size, default_index=2)
if picked is None:
    st.stop()
image = picked[0].to(where)
names = standard.loaded.class_names
label = st.selectbox("Explain class", range(len(names)), format_func=names.__getitem__,
                     index=int(predict(standard, image).argmax()))
methods = ["gradient", "guided_backprop", *cams]


def show(entry, title: str) -> None:
    result = explain_cached(entry, image, methods, target=label)
    card = entry.loaded.card
    st.markdown(f"#### {title}: `{entry.loaded.name}`")
    figures = st.columns(len(methods))
    for column, method in zip(figures, methods):
        picture = result[method].display[0]
        column.image(overlay(image, picture, 0.5) if method in cams else picture.cpu().numpy(), caption=method,
                     clamp=True)
    numbers = st.columns(3 + len(cams))
    numbers[0].metric("gradient/guided distance, this image", f"{gradient_agreement(result):.3f}",
                      help="1 − cosine similarity on this image; lower means the plain gradient looks more guided")
    numbers[1].metric("test accuracy (model card)",
                      f"{100 * card['test_accuracy']:.2f}%" if "test_accuracy" in card else "—")
    numbers[2].metric("test distance (model card)", f"{card['test_gradient_guided_distance']:.3f}"
                      if "test_gradient_guided_distance" in card else "—")
    readouts = readouts_cached(entry, image, explain_cached(entry, image, cams, target=label), label, steps=8) if cams else {}
    for column, method in zip(numbers[3:], cams):
        row = readouts[method]
        column.metric(f"{method} Average Drop", f"{row['average_drop']:.1f}",
                      help=f"IC {row['increase_in_confidence']:.0f} · AG {row['average_gain']:.1f} · "
                      f"insertion {row['insertion_auc']:.3f} · deletion {row['deletion_auc']:.3f}")


show(standard, "Standard")
show(guided, "Regularised")

st.divider()
st.subheader("Train a short run yourself")
st.write(f"Fine-tunes a copy of `{standard.loaded.name}` with the regulariser, batch 8, then measures accuracy "
         "and the gradient/guided distance on 32 test images before and after. A few steps move the distance "
         "only a little; the shipped regularised model had a full fine-tune (see its model card).")
left, middle, right = st.columns(3)
weight = left.slider("λ (regulariser weight)", 0.0, 5.0, 1.0, 0.5)
steps = middle.slider("Steps", 2, 60, 10)
learning_rate = right.select_slider("Learning rate", [1e-5, 3e-5, 1e-4, 3e-4, 1e-3], value=1e-4)
if st.button("Train", type="primary"):
    bar = st.progress(0.0, text="measuring the starting model…")

    def report(done: int, total: int, stats: dict) -> None:
        bar.progress(done / total, text=f"step {done}/{total}: loss {stats['loss']:.3f}, "
                     f"CE {stats['ce']:.3f}, distance {stats['grad_distance']:.3f}")

    try:
        tuned, run = fine_tune(standard, steps, weight, learning_rate, where, on_step=report)
        st.session_state["trained"] = {"entry": tuned, **run}
    except CamlabError as exc:
        st.error(f"The run could not train: {exc}")
    bar.empty()
trained = st.session_state.get("trained")
if trained:
    before, after = trained["before"], trained["after"]
    cols = st.columns(2)
    cols[0].metric("accuracy on 32 test images", f"{100 * after['accuracy']:.1f}%",
                   f"{100 * (after['accuracy'] - before['accuracy']):+.1f} points")
    cols[1].metric("gradient/guided distance on 32 test images", f"{after['grad_distance']:.4f}",
                   f"{after['grad_distance'] - before['grad_distance']:+.4f}", delta_color="inverse")
    show(trained["entry"], "Your run")
