"""pages/4_Training.py, driven by AppTest."""
import json

from tests.pages.apptest import _page, _shown


def test_training_page_compares_models_on_one_scale_and_runs_a_short_training():
    app = _page("4_Training")
    headings = [_shown(m.value) for m in app.markdown if m.value.startswith("####")]
    assert headings == ["#### Standard: baseline_vgg", "#### Regularised: guided_vgg"]
    distances = [float(m.value) for m in app.metric if m.label == "gradient/guided distance, this image"]
    assert len(distances) == 2 and all(0 <= d <= 2 for d in distances)
    shares = [m.value for m in app.metric if m.label == "gradient energy on the object"]
    assert len(shares) == 2 and all(s.endswith("%") for s in shares)  # sample images come with their objects
    tops = [json.loads(c.proto.spec)["data"][1]["zmax"] for c in app.get("plotly_chart")[:4]]
    assert tops[0] == tops[2] and tops[1] == tops[3]  # one colour scale per method across both models
    app.slider[1].set_value(2)  # steps
    app.button[0].click().run()
    assert not app.exception
    assert "gradient/guided distance on 32 test images" in [m.label for m in app.metric]
    curve = json.loads(next(c for c in app.get("plotly_chart") if "cross-entropy" in c.proto.spec).proto.spec)
    assert all(len(line["x"]) == 2 for line in curve["data"])  # one point per step, after the run too
