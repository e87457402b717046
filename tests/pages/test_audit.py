"""pages/6_Audit.py, driven by AppTest: an audit of the generated split, shown and offered as files."""
from tests.pages.apptest import _page


def test_the_audit_page_runs_shows_the_report_and_offers_its_four_files():
    app = _page("6_Audit")
    assert "Press" in app.info[0].value
    app.sidebar.slider[0].set_value(4)
    app.sidebar.multiselect[0].set_value(["gradcam", "hirescam"])
    app.sidebar.select_slider[0].set_value(4)
    app.button[0].click().run(timeout=300)
    assert not app.exception
    assert app.success[0].value.startswith("Audited 4 images")
    assert [b.label for b in app.get("download_button")] == ["Download report.html", "Download readouts.csv",
                                                             "Download summary.csv", "Download manifest.json"]
    app.sidebar.slider[0].set_value(8).run()
    assert "settings changed" in app.warning[0].value


def test_slow_methods_are_not_offered_and_an_empty_choice_says_what_to_do():
    app = _page("6_Audit")
    assert "scorecam" not in app.sidebar.multiselect[0].options
    app.sidebar.multiselect[0].set_value([]).run()
    assert "at least one method" in app.info[0].value
