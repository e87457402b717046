"""pages/4_Training.py, driven by AppTest."""
from tests.pages.apptest import _page


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
