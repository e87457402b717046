"""Benchmark: evaluate methods over a dataset split, with charts and a CSV download."""
import csv
import io

import plotly.graph_objects as go
import streamlit as st

from camlab.data import VARIANTS, StackedDataset
from camlab.evaluate import DEFAULT_GROUPS, METRIC_GROUPS, evaluate, to_rows
from pages._shared import FAST_CAMS, SLOW_CAMS, device, leave_folder_mode, method_label, shipped_picker

leave_folder_mode()

st.title("Benchmark")
st.write("Means over the first N images of a split. Leakage is measured in the model's computed unseen "
         "region (none for an unwalled model). Average Drop and deletion AUC: lower is better; Increase in "
         "Confidence, Average Gain and insertion AUC: higher is better.")
where = device()
entry = shipped_picker(where)
variant = st.sidebar.selectbox("Dataset", VARIANTS)
split = st.sidebar.selectbox("Split", ["test", "val"])
count = st.sidebar.slider("Images", 4, 200, 16, step=4)
methods = st.sidebar.multiselect("Methods", FAST_CAMS + SLOW_CAMS, format_func=method_label,
                                 default=["gradcam", "gradcam++", "hirescam", "layercam"])
groups = st.sidebar.multiselect("Metrics", METRIC_GROUPS, default=list(DEFAULT_GROUPS),
                                help="sanity: cascading randomisation on the first batch (one explanation per layer)")
steps = st.sidebar.select_slider("Insertion/deletion steps", [4, 8, 16, 32], value=8)
settings = (entry.key, variant, split, count, tuple(methods), tuple(groups), steps)

if not methods or not groups:
    st.info("Pick at least one method and one metric group in the sidebar.")
    st.stop()
if st.button("Run the benchmark", type="primary"):
    bar = st.progress(0.0, text="starting…")
    dataset = StackedDataset(variant, split, size=entry.loaded.input_size, length=count)
    zone = entry.dead_zone if entry.dead_zone.any() else None
    with entry.lock:
        outcome = evaluate(entry.loaded.model, entry.loaded.default_layer, dataset, methods, tuple(groups),
                           batch_size=8, wall=zone, steps=steps, progress=False,
                           on_batch=lambda done, total: bar.progress(done / total, text=f"{done}/{total} images"))
    bar.empty()
    st.session_state["benchmark"] = (settings, outcome)

stored = st.session_state.get("benchmark")
if stored is None:
    st.info("Press *Run the benchmark*.")
    st.stop()
ran_with, outcome = stored
if ran_with != settings:
    st.warning("The settings changed since this run; press the button to rerun.")
table = outcome.table
st.subheader(f"{outcome.images} images")
st.dataframe({m: {k: round(v, 4) for k, v in row.items()} for m, row in table.items()})
header, rows = to_rows(table)
text = io.StringIO()
csv.writer(text).writerows([header, *rows])
st.download_button("Download CSV", text.getvalue(), file_name=f"benchmark-{entry.key}-{variant}.csv", mime="text/csv")

charts = st.columns(2)
if any("dead_zone_l2" in row for row in table.values()):
    leak = go.Figure(go.Bar(x=list(table), y=[row.get("dead_zone_l2", 0.0) for row in table.values()]))
    leak.update_layout(title="Leakage ‖S·W‖₂ / ‖S‖₂ per method", yaxis_range=[0, 1], height=340)
    charts[0].plotly_chart(leak, key="leakage")
if any("average_drop" in row for row in table.values()):
    scatter = go.Figure(go.Scatter(x=[row["average_drop"] for row in table.values()],
                                   y=[row["increase_in_confidence"] for row in table.values()],
                                   mode="markers+text", text=list(table), textposition="top center"))
    scatter.update_layout(title="Average Drop vs Increase in Confidence", xaxis_title="Average Drop (lower is better)",
                          yaxis_title="Increase in Confidence (higher is better)", height=340)
    charts[1].plotly_chart(scatter, key="ad-ic")
if outcome.curves:
    curves = go.Figure()
    for method, pair in outcome.curves.items():
        fractions = [i / (len(pair["insertion"]) - 1) for i in range(len(pair["insertion"]))]
        curves.add_scatter(x=fractions, y=pair["insertion"], name=f"{method} insertion")
        curves.add_scatter(x=fractions, y=pair["deletion"], name=f"{method} deletion", line={"dash": "dot"})
    curves.update_layout(title="Mean insertion / deletion curves", xaxis_title="fraction of pixels",
                         yaxis_title="class probability", height=380)
    st.plotly_chart(curves, key="insdel")
