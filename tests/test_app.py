"""The Streamlit home page, driven by streamlit's AppTest."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_home_page_renders_the_masked_model_with_leakage_readouts():
    app = AppTest.from_file(APP, default_timeout=120).run()
    assert not app.exception
    assert app.subheader[0].value.startswith("Prediction:")
    readouts = [m for m in app.metric if "leakage" in m.label]
    assert len(readouts) == 4
    by_method = dict(zip(["gradcam", "gradcam++", "hirescam", "layercam"], (float(m.value) for m in readouts)))
    assert by_method["hirescam"] < 0.01 < by_method["gradcam"]


def test_changing_methods_reruns_and_no_method_explains_itself():
    app = AppTest.from_file(APP, default_timeout=120).run()
    app.sidebar.multiselect[0].set_value(["eigencam"]).run()
    assert not app.exception and len(app.metric) == 1
    app.sidebar.multiselect[0].set_value([]).run()
    assert not app.exception and "at least one method" in app.info[0].value
