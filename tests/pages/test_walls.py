"""pages/2_Walls.py, driven by AppTest."""
from tests.pages.apptest import _leakage, _page, _png, _sidebar_radio, _uploader


def test_walls_page_measures_the_unseen_region_before_any_wall_is_drawn():
    app = _page("2_Walls")
    readouts = {m.label.split()[0]: float(m.value) for m in app.metric}
    assert set(readouts) == {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"}
    assert readouts["layercam"] < 0.01 < readouts["gradcam"]


def test_blinding_without_a_wall_asks_for_one_instead_of_failing():
    app = _page("2_Walls")
    _sidebar_radio(app, "The wall…").set_value("blind").run()
    assert not app.exception
    assert "draw a wall first" in app.info[0].value


def test_walls_page_on_an_uploaded_image_and_an_unwalled_model_asks_for_a_wall():
    app = _page("2_Walls")
    _sidebar_radio(app, "Image").set_value("upload").run()
    _uploader(app, "PNG, JPEG or WebP").set_value(("photo.png", _png("RGB"), "image/png")).run()
    assert not app.exception and _leakage(app)  # the masked model's dead zone is measured on any image
    next(s for s in app.sidebar.selectbox if s.label == "Model").set_value("baseline_vgg").run()
    assert not app.exception
    assert "No wall yet" in app.info[0].value
