"""pages/2_Walls.py, driven by AppTest (drawing on the canvas is tested in Chromium: tests/test_browser.py)."""
import pytest
import torch

from camlab.study.wallvgg import masked_vgg, save_checkpoint
from tests.pages.apptest import _leakage, _page, _png, _sidebar_radio, _uploader


def _table(app, index: int = 0) -> dict:
    return app.table[index].value.T.to_dict()  # {method: {readout: value}}


def test_the_masked_model_shows_its_own_unseen_region_with_zero_clicks():
    app = _page("2_Walls")
    readouts = _leakage(app)
    assert set(readouts) == {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"}
    assert readouts["layercam"] < 0.01 < readouts["gradcam"]
    assert "Draw a wall" in app.info[0].value  # no feature wall yet: the model has its own


def test_any_other_model_gets_the_papers_wall_by_default_and_its_readout():
    app = _page("2_Walls")
    next(s for s in app.sidebar.selectbox if s.label == "Model").set_value("baseline_vgg").run()
    assert not app.exception
    assert not _leakage(app)  # no unseen region of its own
    rows = _table(app)
    assert rows["hirescam"]["leakage, walled cells"] == 0 and rows["layercam"]["leakage, walled cells"] == 0
    assert rows["gradcam"]["leakage, walled cells"] > 0.05  # the headline: Grad-CAM sees through the wall
    assert any("cannot be read downstream" in m.value for m in app.markdown)
    assert any(m.label.startswith("p(") and "after walling" in m.label for m in app.metric)
    assert any("Pixels the walled model provably ignores" in c.value for c in app.caption)


def test_another_layer_can_be_walled():
    app = _page("2_Walls")
    next(s for s in app.sidebar.selectbox if s.label == "Model").set_value("baseline_vgg").run()
    walled_layer = next(s for s in app.sidebar.selectbox if s.label == "Walled layer")
    walled_layer.set_value("features.30").run()
    assert not app.exception
    assert any("on `features.30`" in m.value and "28×28 grid" in m.value for m in app.markdown)
    assert _table(app)["hirescam"]["leakage, walled cells"] == 0


def test_occlusion_and_measure_only_ask_for_regions_and_keep_working_on_uploads():
    app = _page("2_Walls")
    _sidebar_radio(app, "Image").set_value("upload").run()
    _uploader(app, "PNG, JPEG or WebP").set_value(("photo.png", _png("RGB"), "image/png")).run()
    assert not app.exception and _leakage(app)  # the masked model's unseen region, on any image
    for kind in ("occlusion", "measure only"):
        _sidebar_radio(app, "Kind of wall").set_value(kind).run()
        assert not app.exception
        assert "Draw one or more regions" in app.info[0].value


def _overflowing_checkpoint(path) -> bytes:
    """Finite weights whose logits overflow on any bright image but not on the blank one the app
    warms up with: every bias 0, every conv weight positive (a blank image normalises below zero,
    so its ReLU features are 0), the last layer's weights 1e30."""
    torch.manual_seed(0)
    model = masked_vgg(width=1 / 64, hidden=8)  # the paper's wall at 224: an unseen region of its own
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.zero_() if name.endswith("bias") else param.abs_()
        model.classifier[-1].weight.fill_(1e30)
    save_checkpoint(path, model, "masked_vgg", list("abcdefgh"))
    return path.read_bytes()


@pytest.mark.parametrize("page", [None, "2_Walls"])
def test_a_model_whose_output_overflows_on_the_image_is_an_error_not_a_traceback(tmp_path, page):
    app = _page(page)
    _sidebar_radio(app, "Model source").set_value("upload").run()
    data = _overflowing_checkpoint(tmp_path / "overflow.pt")
    _uploader(app, "Checkpoint (.pt, .pth)").set_value(("overflow.pt", data, "application/octet-stream")).run()
    assert not app.exception, app.exception
    assert any("NaN or infinite" in e.value for e in app.error)


def test_the_walled_models_own_wall_is_shown_and_an_unwalled_model_has_none():
    app = _page("2_Walls")
    own = {m.label.split()[0]: float(m.value) for m in app.metric if "own walled cells" in m.label}
    assert own["hirescam"] == own["layercam"] == 0 and own["gradcam"] > 0.1
    assert any("own wall on" in h.value for h in app.subheader)
    assert any("never reads 126 of the 14×14 cells" in c.value and "randomising their values" in c.value
               for c in app.caption)
    next(s for s in app.sidebar.selectbox if s.label == "Model").set_value("baseline_vgg").run()
    assert not app.exception and not any("own walled cells" in m.label for m in app.metric)


def test_a_walled_resnets_own_wall_is_shown_though_no_pixel_is_behind_it():
    app = _page("2_Walls")
    next(s for s in app.sidebar.selectbox if s.label == "Model").set_value("masked_resnet").run()
    assert not app.exception and not _leakage(app)  # no unseen region of its own
    own = {m.label.split()[0]: float(m.value) for m in app.metric if "own walled cells" in m.label}
    assert own["hirescam"] == own["layercam"] == 0 and own["gradcam"] > 0.05
    assert any("own wall on `layer4`" in h.value for h in app.subheader)
