"""Benchmark: evaluate methods over a dataset split, with charts and a CSV download."""
import csv
import io

import streamlit as st

from camlab import CamlabError
from camlab.app.figures import bar_chart, insertion_deletion_figure, scatter_chart
from camlab.app.state import evaluation_reliability, run_evaluation
from camlab.app.widgets import FAST_CAMS, SLOW_CAMS, method_label, page_setup, shipped_picker, show_error
from camlab.evaluation import DEFAULT_GROUPS, METRIC_GROUPS, comparison_rows, report_rows
from camlab.study.data import VARIANTS, StackedDataset

device = page_setup("Benchmark")
st.write("Means over the first N images of a split, for each method and for three control maps (all-zero, "
         "all-ones, random smooth). Leakage is measured in the model's computed unseen region (none for an "
         "unwalled model). Average Drop and deletion AUC: lower is better; Increase in Confidence, Average Gain "
         "and insertion AUC: higher is better. `@k`: the map binarised to its top k% pixels (equal area); "
         "`_matched`: the method's own values at random places (same coverage). `road`: ROAD's mean change in "
         "probability when 10–90% of the most (MoRF, lower is better) or least (LeRF, higher) relevant pixels "
         "are filled in from their neighbours; slow, at most 32 images here.")
entry = shipped_picker(device)
variant = st.sidebar.selectbox("Dataset", VARIANTS)
split = st.sidebar.selectbox("Split", ["test", "val"])
count = st.sidebar.slider("Images", 4, 200, 16, step=4)
methods = st.sidebar.multiselect("Methods", FAST_CAMS + SLOW_CAMS, format_func=method_label,
                                 default=["gradcam", "gradcam++", "hirescam", "layercam"])
groups = st.sidebar.multiselect("Metrics", METRIC_GROUPS, default=list(DEFAULT_GROUPS),
                                help="sanity, on the first batch: cascading randomisation (one explanation per "
                                     "layer), Smooth and Efficient MPRT, and the random-logit test")
steps = st.sidebar.select_slider("Insertion/deletion steps", [4, 8, 16, 32], value=8)
settings = (entry.key, variant, split, count, tuple(methods), tuple(groups), steps)

if not methods or not groups:
    st.info("Pick at least one method and one metric group in the sidebar.")
    st.stop()
if st.button("Run the benchmark", type="primary"):
    bar = st.progress(0.0, text="starting…")
    dataset = StackedDataset(variant, split, size=entry.loaded.input_size, length=count, masks=True)  # localisation
    try:
        outcome = run_evaluation(entry, dataset, methods, tuple(groups), steps,
                                 on_batch=lambda done, total: bar.progress(done / total, text=f"{done}/{total} images"))
        st.session_state["benchmark"] = (settings, outcome)
    except CamlabError as exc:
        show_error(exc, "The benchmark could not run: ")
    bar.empty()

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
header, rows = report_rows(outcome, {"model": entry.key, "dataset": variant, "split": split, "images": outcome.images,
                                     "insertion_deletion_steps": steps, "metric_groups": " ".join(groups)})
text = io.StringIO()
csv.writer(text).writerows([header, *rows])
st.download_button("Download CSV", text.getvalue(), file_name=f"benchmark-{entry.key}-{variant}.csv", mime="text/csv")
if outcome.comparisons:
    st.subheader("Does each method beat its controls?")
    st.caption("Paired per-image difference (method − control) with its 95% interval; *beats* when the whole "
               "interval is on the better side. A method that does not beat a control tells you nothing that "
               "control does not.")
    header, rows = comparison_rows(outcome)
    st.dataframe([dict(zip(header, row)) for row in rows], hide_index=True)
    header, rows = evaluation_reliability(outcome)
    if rows:
        st.subheader("Which readouts to trust on these images")
        st.caption("Each comparison redone on 1000 bootstrap resamples of the images, each image in a random one of "
                   "its tie orders: per method, the share of resamples in which it beats the control. Near 1 or 0 "
                   "the metric decides on these images; near 0.5 its verdict rests on which images were picked. "
                   "rank_stability: Spearman of the methods' order in a resample with their order on all images.")
        st.dataframe([dict(zip(header, row)) for row in rows], hide_index=True)

methods_only = {m: row for m, row in table.items() if m in outcome.comparisons or not m.startswith("control")}
figures = {}  # only the charts this run has data for: no empty slot for an unwalled model
if any("leakage_l2" in row for row in methods_only.values()):
    figures["leakage"] = bar_chart({m: row.get("leakage_l2", 0.0) for m, row in methods_only.items()},
                                   "Leakage ‖S·W‖₂ / ‖S‖₂ per method", height=340)
if any("average_drop" in row for row in table.values()):
    figures["ad-ic"] = scatter_chart({m: (row["average_drop"], row["increase_in_confidence"])
                                      for m, row in table.items() if "average_drop" in row},
                                     "Average Drop vs Increase in Confidence",
                                     "Average Drop (lower is better)", "Increase in Confidence (higher is better)")
for column, (key, figure) in zip(st.columns(max(1, len(figures))), figures.items()):
    column.plotly_chart(figure, key=key)
if outcome.curves:
    st.plotly_chart(insertion_deletion_figure(outcome.curves, "Mean insertion / deletion curves", height=380),
                    key="insdel")
