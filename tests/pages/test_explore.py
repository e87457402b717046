"""app.py, the Explore page, driven by AppTest."""
import io

import pytest
import torch
from PIL import Image

from camlab.models import torchvision_weights_path
from tests.pages.apptest import _leakage, _page, _png, _shown, _sidebar_radio, _uploader


def test_explore_opens_on_the_masked_model_with_leakage_readouts_and_downloads():
    app = _page()
    readouts = _leakage(app)
    assert set(readouts) == {"gradcam", "gradcam++", "hirescam", "layercam"}
    assert readouts["hirescam"] < 0.01 < readouts["gradcam"]
    # first render without plotly's 4.7 MB bundle: four pictures, a table, Vega-Lite curves
    assert len(app.get("image")) == 4 and not app.get("plotly_chart")
    assert len(app.get("vega_lite_chart")) == 1
    table = app.table[0].value
    assert {"gradcam", "control: all-zero", "control: random"} <= set(table.columns)
    assert "Average Drop ↓, top 20% of the map" in table.index and "average_drop@20" not in table.index
    assert any("AD vs its matched control" in c.value and ("✓" in c.value or "✗" in c.value) for c in app.caption)
    assert any("AD " in c.value and "ins " in c.value for c in app.caption)
    labels = {b.label for b in app.download_button}
    assert {"overlay PNG", "raw maps (.npz)", "manifest (.json)"} <= labels
    next(t for t in app.toggle if t.label == "Hover values").set_value(True).run()  # in the maps' fragment
    assert not app.exception and len(app.get("plotly_chart")) == 4 and not app.get("image")


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
    next(r for r in app.radio if r.label == "Colour scale").set_value("shared").run()  # in the maps' fragment
    app.sidebar.multiselect[0].set_value(["gradcam", "hirescam", "gradient"]).run()
    assert not app.exception
    assert next(r for r in app.radio if r.label == "Colour scale").value == "shared"
    assert len(app.get("image")) == 3


def test_slow_methods_wait_for_the_button_then_show():
    app = _page()
    app.sidebar.multiselect[0].set_value(["gradcam", "ablationcam"]).run()
    assert not app.exception
    assert list(_leakage(app)) == ["gradcam"]  # the slow one is not computed yet
    button = next(b for b in app.button if "ablationcam" in b.label)
    button.click().run()
    assert not app.exception
    assert set(_leakage(app)) == {"gradcam", "ablationcam"}
    assert not any("ablationcam" in b.label for b in app.button)  # the button goes once the maps are shown


def test_smoothing_recomputes_the_maps_and_their_readouts_and_keeps_hirescams_wall():
    app = _page()
    plain = _leakage(app)
    smoothing = next(m for m in app.sidebar.multiselect if m.label == "Smoothing")
    smoothing.set_value(["aug_smooth"]).run()
    assert not app.exception and not app.error
    smoothed = _leakage(app)
    assert set(smoothed) == set(plain) and smoothed["gradcam"] != plain["gradcam"]  # not the cached readouts
    assert smoothed["hirescam"] < 0.01 < smoothed["gradcam"]  # the mean of signed raw maps keeps the zero
    next(m for m in app.sidebar.multiselect if m.label == "Smoothing").set_value([]).run()
    assert _leakage(app) == plain  # back to the unsmoothed view, from the cache


def test_sampled_methods_take_the_pages_samples_and_seed_as_their_own_view():
    app = _page()
    methods = next(m for m in app.sidebar.multiselect if m.label == "Methods")
    methods.set_value(["gradcam", "hirescam", "smoothgrad"]).run()
    next(s for s in app.sidebar.select_slider if s.label == "Samples").set_value(4).run()
    next(n for n in app.sidebar.number_input if n.label == "Seed").set_value(3).run()
    next(b for b in app.button if b.label == "Compute smoothgrad").click().run()
    assert not app.exception and not app.error and "smoothgrad" in _leakage(app)
    assert not [b for b in app.button if b.label == "Compute smoothgrad"]  # this view has it now
    next(n for n in app.sidebar.number_input if n.label == "Seed").set_value(4).run()
    assert [b for b in app.button if b.label == "Compute smoothgrad"]  # another draw is another view
    assert "smoothgrad" not in _leakage(app) and not app.exception


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_explore_accepts_grey_transparent_and_palette_uploads(mode):
    app = _page()
    _sidebar_radio(app, "Image").set_value("upload").run()
    _uploader(app, "PNG, JPEG or WebP").set_value((f"x-{mode}.png", _png(mode), "image/png")).run()
    assert not app.exception and not app.error
    assert any(f"{mode} converted to RGB" in _shown(c.value) for c in app.sidebar.caption)
    assert len(_leakage(app)) == 4


def test_explore_bad_image_uploads_are_errors_not_tracebacks():
    app = _page()
    _sidebar_radio(app, "Image").set_value("upload").run()
    uploader = _uploader(app, "PNG, JPEG or WebP")
    uploader.set_value(("notes.png", b"this is not an image", "image/png")).run()
    assert not app.exception and "could not read this file as an image" in _shown(app.error[0].value)
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buffer, format="PNG")
    _uploader(app, "PNG, JPEG or WebP").set_value(("huge.png", buffer.getvalue(), "image/png")).run()
    assert not app.exception and "the limit is" in _shown(app.error[0].value)


def test_explore_wrong_checkpoints_are_errors_and_offline_weights_say_what_to_do(tmp_path):
    app = _page()
    _sidebar_radio(app, "Model source").set_value("upload").run()
    assert not app.exception and "Upload a checkpoint" in app.info[0].value
    _uploader(app, "Checkpoint (.pt, .pth)").set_value(("model.pt", b"garbage", "application/octet-stream")).run()
    assert not app.exception and "not a PyTorch checkpoint" in _shown(app.error[0].value)
    path = tmp_path / "resnet18_mine.pt"
    torch.save({"fc.weight": torch.zeros(3, 7)}, path)
    _uploader(app, "Checkpoint (.pt, .pth)").set_value((path.name, path.read_bytes(), "application/octet-stream")).run()
    assert not app.exception and "does not fit the architecture" in _shown(app.error[0].value)
    _sidebar_radio(app, "Model source").set_value("torchvision").run()  # the suite is offline, its cache empty
    assert not app.exception
    message = _shown(app.error[0].value)
    assert not app.get("progress")  # the "Downloading…" bar went away with the failure
    assert "could not be downloaded" in message and f"-o {torchvision_weights_path('vgg16')}" in message


def test_explore_random_weight_torchvision_model_explains_with_a_chosen_layer():
    app = _page()
    _sidebar_radio(app, "Model source").set_value("torchvision").run()
    next(s for s in app.sidebar.selectbox if s.label == "torchvision model").set_value("resnet18").run()
    next(c for c in app.sidebar.checkbox if c.label == "random weights").check().run()
    assert not app.exception and not app.error
    assert "random weights" in app.warning[0].value  # its maps mean nothing, and the page says so
    assert not _leakage(app)  # no dead zone, so no leakage readout
    layers = next(s for s in app.sidebar.selectbox if s.label == "Target layer")
    assert layers.value == "layer4"
    layers.set_value("layer3").run()
    assert not app.exception and "layer `layer3`" in app.caption[0].value


def test_explore_unknown_typed_layer_is_an_error_with_a_suggestion():
    app = _page()
    app.sidebar.text_input[0].set_value("features.422").run()
    assert not app.exception
    assert "features.42" in _shown(app.error[0].value)


def test_a_vision_transformer_is_explained_at_its_default_token_layer_on_a_photograph():
    app = _page()
    # readouts run ViT-B/16 on dozens of masked images per rerun: minutes on a CI core, and not what this tests
    next(t for t in app.sidebar.toggle if t.label == "Faithfulness readouts").set_value(False)
    _sidebar_radio(app, "Model source").set_value("torchvision").run()
    next(s for s in app.sidebar.selectbox if s.label == "torchvision model").set_value("vit_b_16").run()
    next(c for c in app.sidebar.checkbox if c.label == "random weights").check().run()
    _sidebar_radio(app, "Image").set_value("photograph").run()
    next(s for s in app.sidebar.selectbox if s.label == "Photograph").set_value("cat").run()
    assert not app.exception and not app.error
    layers = next(s for s in app.sidebar.selectbox if s.label == "Target layer")
    assert layers.value == "encoder.layers.encoder_layer_11.ln_1"
    assert "(768, 14, 14)" in layers.format_func(layers.value)
    assert any("Chelsea the cat" in c.value for c in app.sidebar.caption)
    assert len(app.get("image")) >= 4


def test_a_test_image_number_out_of_range_is_clamped_and_the_box_says_so():
    app = _page()
    box = next(n for n in app.sidebar.number_input if n.label.startswith("Test image"))
    box.set_value(5000).run()
    box = next(n for n in app.sidebar.number_input if n.label.startswith("Test image"))
    assert not app.exception and box.value == 799
    assert any("stack-shapes test #799" in _shown(c.value) for c in app.caption)
    box.set_value(-3).run()
    assert next(n for n in app.sidebar.number_input if n.label.startswith("Test image")).value == 0


def test_class_names_pasted_beside_an_uploaded_checkpoint_name_its_outputs(tmp_path):
    from camlab.study.wallvgg import masked_vgg, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, masked_vgg(width=1 / 64, input_size=32, masked_rows=1, hidden=8), "masked_vgg",
                    [str(i) for i in range(8)])
    app = _page()
    _sidebar_radio(app, "Model source").set_value("upload").run()
    next(t for t in app.sidebar.text_area if t.label == "Class names (optional)").set_value(
        "\n".join(f"kind {i}" for i in range(8)))
    _uploader(app, "Checkpoint (.pt, .pth)").set_value(("tiny.pt", path.read_bytes(), "application/octet-stream")).run()
    assert not app.exception and not app.error
    picker = app.selectbox[0]
    assert all(picker.format_func(i).startswith(f"kind {i} ") for i in range(8))
    next(t for t in app.sidebar.text_area if t.label == "Class names (optional)").set_value("only\ntwo").run()
    assert not app.exception and "8 outputs, and the class list gives 2" in _shown(app.error[0].value)
