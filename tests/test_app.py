"""Every Streamlit page, driven by streamlit's AppTest: renders, reruns on changes, bad input is an error."""
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from camlab.models import torchvision_weights_path

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def _page(name: str | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=300).run()
    if name:
        app.switch_page(f"pages/{name}.py").run()
    assert not app.exception, app.exception
    return app


def _png(mode: str, size=(300, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 4), dtype=np.uint8),
                    "RGBA").convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _leakage(app: AppTest) -> dict[str, float]:
    return {m.label.split()[0]: float(m.value) for m in app.metric if "leakage" in m.label}


def _sidebar_radio(app: AppTest, label: str):
    return next(r for r in app.sidebar.radio if r.label == label)


def _uploader(app: AppTest, label: str):
    return next(u for u in app.sidebar.file_uploader if u.label == label)


# Explore -------------------------------------------------------------------------------------------


def test_explore_opens_on_the_masked_model_with_leakage_readouts_and_downloads():
    app = _page()
    readouts = _leakage(app)
    assert set(readouts) == {"gradcam", "gradcam++", "hirescam", "layercam"}
    assert readouts["hirescam"] < 0.01 < readouts["gradcam"]
    assert len(app.get("plotly_chart")) == 5  # four heatmaps and the insertion/deletion curves
    assert any("AD " in c.value and "ins " in c.value for c in app.caption)
    labels = {b.label for b in app.download_button}
    assert {"overlay PNG", "raw maps (.npz)", "manifest (.json)"} <= labels


def test_explore_reruns_on_method_and_class_changes():
    app = _page()
    app.sidebar.multiselect[0].set_value(["gradcam", "eigencam"]).run()
    assert not app.exception and set(_leakage(app)) == {"gradcam", "eigencam"}
    before = _leakage(app)
    picker = app.selectbox[0]
    assert picker.label.startswith("Explain class")
    picker.select_index(1).run()  # the second most probable class
    assert not app.exception
    after = _leakage(app)
    assert after["gradcam"] != before["gradcam"]
    assert after["eigencam"] == before["eigencam"]  # Eigen-CAM ignores the class by construction
    app.sidebar.multiselect[0].set_value([]).run()
    assert not app.exception and "at least one method" in app.info[0].value


def test_explore_shared_colour_scale_and_pixel_methods_render():
    app = _page()
    _sidebar_radio(app, "Colour scale").set_value("shared").run()
    app.sidebar.multiselect[0].set_value(["gradcam", "hirescam", "gradient"]).run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 4


def test_slow_methods_wait_for_the_button_then_show():
    app = _page()
    app.sidebar.multiselect[0].set_value(["gradcam", "ablationcam"]).run()
    assert not app.exception
    assert list(_leakage(app)) == ["gradcam"]  # the slow one is not computed yet
    button = next(b for b in app.button if "ablationcam" in b.label)
    button.click().run()
    assert not app.exception
    assert set(_leakage(app)) == {"gradcam", "ablationcam"}


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_explore_accepts_grey_transparent_and_palette_uploads(mode):
    app = _page()
    _sidebar_radio(app, "Image").set_value("upload").run()
    _uploader(app, "PNG, JPEG or WebP").set_value((f"x-{mode}.png", _png(mode), "image/png")).run()
    assert not app.exception and not app.error
    assert any(f"{mode} converted to RGB" in c.value for c in app.sidebar.caption)
    assert len(_leakage(app)) == 4


def test_explore_bad_image_uploads_are_errors_not_tracebacks():
    app = _page()
    _sidebar_radio(app, "Image").set_value("upload").run()
    uploader = _uploader(app, "PNG, JPEG or WebP")
    uploader.set_value(("notes.png", b"this is not an image", "image/png")).run()
    assert not app.exception and "could not read this file as an image" in app.error[0].value
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buffer, format="PNG")
    _uploader(app, "PNG, JPEG or WebP").set_value(("huge.png", buffer.getvalue(), "image/png")).run()
    assert not app.exception and "the limit is" in app.error[0].value


def test_explore_wrong_checkpoints_are_errors_and_torchvision_weights_never_download(tmp_path):
    app = _page()
    _sidebar_radio(app, "Model source").set_value("upload").run()
    assert not app.exception and "Upload a checkpoint" in app.info[0].value
    _uploader(app, "Checkpoint (.pt, .pth, .ts)").set_value(("model.pt", b"garbage", "application/octet-stream")).run()
    assert not app.exception and "not a PyTorch checkpoint" in app.error[0].value
    path = tmp_path / "resnet18_mine.pt"
    torch.save({"fc.weight": torch.zeros(3, 7)}, path)
    _uploader(app, "Checkpoint (.pt, .pth, .ts)").set_value((path.name, path.read_bytes(), "application/octet-stream")).run()
    assert not app.exception and "does not fit the architecture" in app.error[0].value
    _sidebar_radio(app, "Model source").set_value("torchvision").run()
    assert not app.exception
    if torchvision_weights_path("vgg16").exists():
        assert not app.error
    else:  # say where to put the weights, never download them
        assert "not available offline" in app.error[0].value


def test_explore_random_weight_torchvision_model_explains_with_a_chosen_layer():
    app = _page()
    _sidebar_radio(app, "Model source").set_value("torchvision").run()
    next(s for s in app.sidebar.selectbox if s.label == "torchvision model").set_value("resnet18").run()
    next(c for c in app.sidebar.checkbox if c.label == "random weights").check().run()
    assert not app.exception and not app.error
    assert not _leakage(app)  # no dead zone, so no leakage readout
    layers = next(s for s in app.sidebar.selectbox if s.label == "Target layer")
    assert layers.value == "layer4"
    layers.set_value("layer3").run()
    assert not app.exception and "layer `layer3`" in app.caption[0].value


def test_explore_unknown_typed_layer_is_an_error_with_a_suggestion():
    app = _page()
    app.sidebar.text_input[0].set_value("features.422").run()
    assert not app.exception
    assert "features.42" in app.error[0].value


# Walls ---------------------------------------------------------------------------------------------


def test_walls_page_measures_the_dead_zone_before_any_wall_is_drawn():
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


# Benchmark -----------------------------------------------------------------------------------------


def test_benchmark_runs_over_a_split_and_charts_the_table():
    app = _page("3_Benchmark")
    assert "Press" in app.info[0].value
    app.sidebar.slider[0].set_value(4)
    app.sidebar.multiselect[0].set_value(["gradcam", "hirescam"])
    app.button[0].click().run()
    assert not app.exception
    table = app.dataframe[0].value
    assert set(table.columns) == {"gradcam", "hirescam"}
    assert table.loc["dead_zone_l2", "hirescam"] < 0.01 < table.loc["dead_zone_l2", "gradcam"]
    assert len(app.get("plotly_chart")) == 3  # leakage bars, AD vs IC, insertion/deletion curves
    assert app.download_button[0].label == "Download CSV"
    app.sidebar.slider[0].set_value(8).run()
    assert "settings changed" in app.warning[0].value


# Training ------------------------------------------------------------------------------------------


def test_training_page_compares_models_and_runs_a_short_training():
    app = _page("4_Training")
    headings = [m.value for m in app.markdown if m.value.startswith("####")]
    assert headings == ["#### Standard: `baseline_vgg`", "#### Regularised: `guided_vgg`"]
    distances = [float(m.value) for m in app.metric if m.label == "gradient/guided distance, this image"]
    assert len(distances) == 2 and all(0 <= d <= 2 for d in distances)
    app.slider[1].set_value(2)  # steps
    app.button[0].click().run()
    assert not app.exception
    assert "gradient/guided distance on 32 test images" in [m.label for m in app.metric]
    assert any(m.value.startswith("#### Your run: `baseline_vgg+2steps") for m in app.markdown)


# Theory --------------------------------------------------------------------------------------------


def test_theory_page_shows_mass_below_the_wall():
    app = _page("5_Theory")
    assert float(app.metric[0].value.rstrip("%")) > 1
    app.slider[0].set_value(16).run()
    assert not app.exception
