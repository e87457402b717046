"""pages/5_Theory.py, driven by AppTest."""
from tests.pages.apptest import _page


def test_theory_page_shows_mass_below_the_wall():
    app = _page("5_Theory")
    values = {m.label: float(m.value.rstrip("%")) for m in app.metric}
    assert values["Mean Grad-CAM mass below the wall"] > 1 and values["Mean HiRes-CAM mass below the wall"] == 0
    assert len(app.get("plotly_chart")) == 2  # the example maps and the spread over initialisations
    app.slider[0].set_value(16).run()
    assert not app.exception
