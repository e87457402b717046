"""pages/5_Theory.py, driven by AppTest."""
import pytest

from camlab import CamlabError
from camlab.app.theory import LIVE_SEEDS, init_walls_view
from tests.pages.apptest import _page


def test_theory_page_shows_mass_below_the_wall():
    app = _page("5_Theory")
    values = {m.label: float(m.value.rstrip("%")) for m in app.metric}
    assert values["Mean Grad-CAM mass below the wall"] > 1 and values["Mean HiRes-CAM mass below the wall"] == 0
    assert len(app.get("plotly_chart")) == 2  # the example maps and the spread over initialisations
    app.slider[0].set_value(16).run()
    assert not app.exception


def test_theory_page_walls_a_random_resnet_at_its_default_layer():
    app = _page("5_Theory")
    app.radio[0].set_value("resnet18").run()
    assert not app.exception and not app.error
    values = {m.label: float(m.value) for m in app.metric}
    assert values["Grad-CAM leakage"] > 0.1 and values["HiRes-CAM leakage"] == 0
    assert values["All-ones control"] == pytest.approx((5 / 7) ** 0.5, abs=1e-3)  # 5 of 7 rows of layer4 walled
    assert len(app.get("plotly_chart")) == 2 and len(app.dataframe) == 1
    rows = app.dataframe[0].value
    assert {"control: random", "control: Random-CAM", "gradcam (matched)"} <= set(rows["row"])


def test_live_initialisations_are_bounded():
    for seeds in (0, LIVE_SEEDS + 1, True, 2.5):
        with pytest.raises(CamlabError, match=f"between 1 and {LIVE_SEEDS}"):
            init_walls_view("resnet18", seeds)
    with pytest.raises(CamlabError, match="unknown architecture"):
        init_walls_view("alexnet", 1)
