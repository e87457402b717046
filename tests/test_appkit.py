"""The Streamlit-free app helpers: result cache, model sources, readouts, exports, figures."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from camlab import CamlabError, CAMEngine
from camlab.appkit import (MODELS_DIR, ResultCache, cached_methods, check_layer, explain_cached, faithfulness,
                           gradient_agreement, open_model, open_uploaded, predict, readouts_cached, top_classes)
from camlab.data import StackedDataset
from camlab.evaluate import evaluate
from camlab.export import manifest, maps_npz, overlay_png
from camlab.metrics import confidence_metrics, insertion_deletion
from camlab.plotting import heatmap_figure, read_image
from camlab.train import short_run


@pytest.fixture(scope="module")
def masked():
    return open_model("masked_vgg", "cpu")


@pytest.fixture(scope="module")
def sample(masked):
    return StackedDataset("stack-shapes", "test", size=masked.loaded.input_size)[5][0]


def test_cache_computes_only_missing_methods(masked, sample, monkeypatch):
    calls = []
    original = CAMEngine.explain

    def counting(self, images, methods, targets=None):
        calls.append(list(methods))
        return original(self, images, methods, targets)

    monkeypatch.setattr(CAMEngine, "explain", counting)
    first = explain_cached(masked, sample, ["gradcam", "hirescam"], target=3)
    again = explain_cached(masked, sample, ["hirescam", "gradcam"], target=3)
    more = explain_cached(masked, sample, ["gradcam", "layercam"], target=3)
    assert calls == [["gradcam", "hirescam"], ["layercam"]]
    assert again["gradcam"] is first["gradcam"] and more["gradcam"] is first["gradcam"]
    assert cached_methods(masked, sample, target=3) == {"gradcam", "hirescam", "layercam"}
    fresh = CAMEngine(masked.loaded.model, masked.loaded.default_layer).explain(sample[None], ["layercam"], 3)
    assert torch.allclose(more["layercam"].display, fresh["layercam"].display)
    explain_cached(masked, sample, ["gradcam"], target=4)  # another class is another entry
    assert calls[-1] == ["gradcam"]


def test_cache_is_bounded_least_recently_used():
    cache = ResultCache(capacity=2)
    cache.slot("a")["maps"]["x"] = 1
    cache.slot("b")
    cache.slot("a")  # touch a, so b is the oldest
    cache.slot("c")
    assert len(cache) == 2 and cache.slot("a")["maps"] == {"x": 1}
    assert cache.slot("b")["maps"] == {}  # b was evicted


def test_predict_and_top_classes(masked, sample):
    logits = predict(masked, sample)
    ranked = top_classes(logits, masked.loaded.class_names, k=3)
    assert [i for i, _, _ in ranked] == logits.topk(3).indices.tolist()
    assert all(a[2] >= b[2] for a, b in zip(ranked, ranked[1:]))
    full = top_classes(logits, masked.loaded.class_names, k=100)
    assert len(full) == 8 and abs(sum(p for _, _, p in full) - 1) < 1e-5


def test_batched_readouts_equal_per_method_metrics(masked, sample):
    result = explain_cached(masked, sample, ["gradcam", "hirescam"])
    target = int(result.classes[0])
    rows = faithfulness(masked.loaded.model, sample, {m: result[m].display[0] for m in result}, target, steps=4)
    for method in ("gradcam", "hirescam"):
        maps = result[method].display
        classes = torch.tensor([target])
        alone = confidence_metrics(masked.loaded.model, sample[None], maps, classes)
        curves = insertion_deletion(masked.loaded.model, sample[None], maps, classes, 4)
        assert rows[method]["average_drop"] == pytest.approx(float(alone["average_drop"][0]), abs=1e-3)
        assert rows[method]["insertion_auc"] == pytest.approx(float(curves["insertion_auc"][0]), abs=1e-5)
        assert len(rows[method]["deletion_curve"]) == 5


def test_readouts_include_leakage_only_with_a_wall_and_are_cached(masked, sample):
    result = explain_cached(masked, sample, ["gradcam", "layercam"])
    with_wall = readouts_cached(masked, sample, result, wall=masked.dead_zone, steps=4)
    assert with_wall["layercam"]["dead_zone_l2"] < 0.01 < with_wall["gradcam"]["dead_zone_l2"]
    assert readouts_cached(masked, sample, result, wall=masked.dead_zone, steps=4)["gradcam"] is with_wall["gradcam"]
    without = readouts_cached(masked, sample, result, wall=None, steps=4)
    assert "dead_zone_l2" not in without["gradcam"] and "average_drop" in without["gradcam"]


def test_check_layer_accepts_spatial_layers_and_explains_bad_names(masked):
    assert check_layer(masked, "features.40") == "features.40"
    with pytest.raises(CamlabError, match="features.42"):
        check_layer(masked, "features.422")
    with pytest.raises(CamlabError, match="spatial"):
        check_layer(masked, "classifier.0")


def test_uploaded_checkpoints_load_or_fail_clearly(tmp_path):
    shipped = open_model("masked_vgg", "cpu")
    data = (MODELS_DIR / "masked_vgg.pt").read_bytes()
    entry = open_uploaded(data, "masked_vgg.pt", "cpu")
    assert torch.equal(entry.dead_zone, shipped.dead_zone) and entry.key.startswith("upload:")
    with pytest.raises(CamlabError, match="not a checkpoint"):
        open_uploaded(data, "weights.txt", "cpu")
    with pytest.raises(CamlabError, match="not a PyTorch checkpoint"):
        open_uploaded(b"\x00" * 100, "model.pt", "cpu")
    scripted = tmp_path / "scripted.ts"
    torch.jit.trace(shipped.loaded.model, torch.rand(1, 3, 224, 224)).save(str(scripted))
    with pytest.raises(CamlabError, match="TorchScript"):
        open_uploaded(scripted.read_bytes(), "scripted.ts", "cpu")


def test_read_image_explains_conversions():
    buffer = io.BytesIO()
    Image.new("RGBA", (320, 240), (10, 20, 30, 0)).save(buffer, format="PNG")
    image, note = read_image(buffer.getvalue(), 64)
    assert image.shape == (3, 64, 64)
    assert note == "320x240 RGBA converted to RGB (transparency dropped), resized and centre-cropped to 64x64"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    assert read_image(buffer.getvalue(), 64)[1] == "64x64 RGB"


def test_exports_round_trip(masked, sample):
    result = explain_cached(masked, sample, ["gradcam", "gradient"])
    arrays = np.load(io.BytesIO(maps_npz(result)))
    assert arrays["gradcam.raw"].shape == tuple(result["gradcam"].raw.shape[1:])
    assert np.allclose(arrays["gradient.display"], result["gradient"].display[0].numpy())
    assert arrays["logits"].shape == (8,)
    png = overlay_png(sample, result["gradcam"].display[0], 0.5, masked.dead_zone)
    assert Image.open(io.BytesIO(png)).size == (sample.shape[2], sample.shape[1])
    record = json.loads(manifest(model="masked_vgg", architecture="masked_vgg", layer=result.layer, target_class=2,
                                 class_name="triangle", methods=["gradcam"], metrics={"gradcam": {"ad": 1.5}},
                                 image="test #5", device="cpu", extra_versions={"streamlit": "x"}, steps=8))
    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["streamlit"] == "x"
    assert record["settings"] == {"steps": 8} and record["target_class"] == {"index": 2, "name": "triangle"}


def test_heatmap_figure_shares_or_fits_its_colour_range(sample):
    heat = torch.rand(sample.shape[1:]) * 0.5
    fitted = heatmap_figure(sample, heat, "m")
    shared = heatmap_figure(sample, heat, "m", zmax=2.0)
    assert fitted.data[1].zmax == pytest.approx(float(heat.max()))
    assert shared.data[1].zmax == 2.0
    assert "value" in shared.data[1].hovertemplate


def test_gradient_agreement_is_lower_for_the_regularised_model(sample):
    values = {}
    for name in ("baseline_vgg", "guided_vgg"):
        entry = open_model(name, "cpu")
        images = torch.stack([StackedDataset("stack-shapes", "test", size=224)[i][0] for i in range(8)])
        values[name] = np.mean([gradient_agreement(explain_cached(entry, image, ["gradient", "guided_backprop"]))
                                for image in images])
    assert values["guided_vgg"] < values["baseline_vgg"]


def test_evaluate_reports_mean_curves(masked):
    data = StackedDataset("stack-shapes", "test", size=224, length=4)
    outcome = evaluate(masked.loaded.model, masked.loaded.default_layer, data, ["gradcam"], ("insdel",),
                       batch_size=2, steps=4, progress=False)
    assert outcome.images == 4 and len(outcome.curves["gradcam"]["insertion"]) == 5
    assert np.trapezoid(outcome.curves["gradcam"]["insertion"], dx=0.25) == pytest.approx(
        outcome.table["gradcam"]["insertion_auc"], abs=1e-5)


def test_short_run_trains_a_copy_and_reports(masked):
    baseline = open_model("baseline_vgg", "cpu").loaded.model
    before = {k: v.clone() for k, v in baseline.state_dict().items()}
    seen = []
    run = short_run(baseline, steps=2, guided_grad_reg=1.0, batch_size=4, check_images=8,
                    on_step=lambda done, total, stats: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    assert all(torch.equal(before[k], v) for k, v in baseline.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in run["model"].state_dict().items())
    assert set(run["before"]) == set(run["after"]) == {"accuracy", "grad_distance"}


def test_models_that_cannot_be_explained_are_refused_at_load():
    from camlab.appkit import model_entry
    from camlab.models import LoadedModel

    grey = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with pytest.raises(CamlabError, match=r"does not run on a \(1, 3, 32, 32\) image"):
        model_entry(LoadedModel(grey, "grey", "custom", ["a", "b"], None, input_size=32), "grey", "cpu")
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    with pytest.raises(CamlabError, match="no layer with a spatial"):
        model_entry(LoadedModel(flat, "flat", "custom", ["a", "b"], None, input_size=32), "flat", "cpu")
