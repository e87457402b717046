"""pages/3_Benchmark.py, driven by AppTest."""
from tests.pages.apptest import _page


def test_benchmark_runs_over_a_split_and_charts_the_table():
    app = _page("3_Benchmark")
    assert "Press" in app.info[0].value
    app.sidebar.slider[0].set_value(4)
    app.sidebar.multiselect[0].set_value(["gradcam", "hirescam"])
    app.button[0].click().run()
    assert not app.exception
    table = app.dataframe[0].value
    assert set(table.columns) == {"gradcam", "hirescam", "control: all-zero", "control: all-ones", "control: random"}
    assert table.loc["leakage_l2", "hirescam"] < 0.01 < table.loc["leakage_l2", "gradcam"]
    assert table.loc["average_drop", "control: all-ones"] == 0
    verdicts = app.dataframe[1].value
    assert set(verdicts["method"]) == {"gradcam", "hirescam"}
    assert set(verdicts["verdict"]) <= {"beats", "does not beat"} and "average_drop@20" in set(verdicts["metric"])
    trust = app.dataframe[2].value  # the comparisons resampled
    assert {"insertion_auc", "pointing_game"} <= set(trust["metric"])
    assert trust[["gradcam", "hirescam"]].stack().between(0, 1).all() and set(trust["resamples"]) == {1000}
    assert len(app.get("plotly_chart")) == 3  # leakage bars, AD vs IC, insertion/deletion curves
    assert app.download_button[0].label == "Download CSV"
    app.sidebar.slider[0].set_value(8).run()
    assert "settings changed" in app.warning[0].value
