"""pages/5_Theory.py, driven by AppTest."""
from tests.pages.apptest import _page


def test_theory_page_shows_mass_below_the_wall():
    app = _page("5_Theory")
    assert float(app.metric[0].value.rstrip("%")) > 1
    app.slider[0].set_value(16).run()
    assert not app.exception
