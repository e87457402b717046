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


WALLS = str(Path(__file__).resolve().parent.parent / "pages" / "2_Walls.py")


def test_walls_page_measures_the_dead_zone_before_any_wall_is_drawn():
    app = AppTest.from_file(WALLS, default_timeout=120).run()
    assert not app.exception
    readouts = {m.label.split()[0]: float(m.value) for m in app.metric}
    assert set(readouts) == {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"}
    assert readouts["layercam"] < 0.01 < readouts["gradcam"]


def test_blinding_without_a_wall_asks_for_one_instead_of_failing():
    app = AppTest.from_file(WALLS, default_timeout=120).run()
    app.sidebar.radio[0].set_value("blind").run()
    assert not app.exception
    assert "draw a wall first" in app.info[0].value


def test_theory_page_shows_mass_below_the_wall():
    app = AppTest.from_file(str(Path(APP).parent / "pages" / "5_Theory.py"), default_timeout=120).run()
    assert not app.exception
    assert float(app.metric[0].value.rstrip("%")) > 1
    app.slider[0].set_value(16).run()
    assert not app.exception
