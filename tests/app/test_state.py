"""The app's state: result cache, readouts, layer checks, refusal of models that cannot be explained."""
import json
import threading
import time

import numpy as np
import pytest
import torch

import camlab
from camlab import CAMEngine, CamlabError
from camlab.app.sources import open_shipped
from camlab.app.state import (
    MethodSettings,
    ResultCache,
    YieldingLock,
    cached_methods,
    check_layer,
    default_layer,
    explain_cached,
    faithfulness,
    gradient_agreement,
    image_verdicts,
    model_entry,
    model_record,
    predict,
    readouts_cached,
    top_classes,
    with_class_names,
)
from camlab.metrics.catalog import words
from camlab.metrics.controls import matched_control
from camlab.metrics.faithfulness import confidence_metrics, fixed_coverage_metrics, insertion_deletion
from camlab.models import LoadedModel
from camlab.study.data import StackedDataset


@pytest.fixture(scope="module")
def masked():
    return open_shipped("masked_vgg", "cpu")


@pytest.fixture(scope="module")
def sample(masked):
    return StackedDataset("stack-shapes", "test", size=masked.loaded.input_size)[5][0]


def test_cache_computes_only_missing_methods(masked, sample, monkeypatch):
    calls = []
    original = CAMEngine.explain

    def counting(self, images, methods, targets=None, options=None):
        calls.append(list(methods))
        return original(self, images, methods, targets, options)

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


def test_smoothing_is_its_own_view_on_the_methods_that_take_it(masked, sample):
    plain = explain_cached(masked, sample, ["gradcam", "randomcam"], target=3)
    smoothed = explain_cached(masked, sample, ["gradcam", "randomcam"], target=3,
                              settings=MethodSettings(("aug_smooth",)))
    direct = camlab.explain(masked.loaded.model, sample[None], ["gradcam"], masked.loaded.default_layer, targets=3,
                            options={"gradcam": {"aug_smooth": True}})["gradcam"]
    assert torch.equal(smoothed["gradcam"].raw, direct.raw) and not torch.equal(smoothed["gradcam"].raw, plain["gradcam"].raw)
    assert torch.equal(smoothed["randomcam"].raw, plain["randomcam"].raw)  # a baseline takes no smoothing
    assert cached_methods(masked, sample, target=3, settings=MethodSettings(("aug_smooth",))) == {"gradcam", "randomcam"}
    with pytest.raises(CamlabError, match="unknown smoothing 'blur'"):
        MethodSettings(("blur",))


def test_samples_and_seed_reach_the_sampled_methods_and_are_their_own_view(masked, sample):
    settings = MethodSettings(samples=4, seed=7)
    assert settings.options(["gradcam", "smoothgrad", "integrated_gradients", "randomcam", "sscam"]) == {
        "smoothgrad": {"samples": 4, "seed": 7}, "integrated_gradients": {"steps": 4}, "randomcam": {"seed": 7},
        "sscam": {"samples": 4, "seed": 7}}
    assert MethodSettings(("eigen_smooth", "aug_smooth")) == MethodSettings(("aug_smooth", "eigen_smooth"))
    seven = explain_cached(masked, sample, ["smoothgrad", "gradcam"], target=3, settings=settings)
    direct = camlab.explain(masked.loaded.model, sample[None], ["smoothgrad"], masked.loaded.default_layer, targets=3,
                            options={"smoothgrad": {"samples": 4, "seed": 7}})["smoothgrad"]
    assert torch.equal(seven["smoothgrad"].raw, direct.raw)
    other = explain_cached(masked, sample, ["smoothgrad", "gradcam"], target=3, settings=MethodSettings(samples=4, seed=8))
    assert not torch.equal(other["smoothgrad"].raw, seven["smoothgrad"].raw)
    assert torch.equal(other["gradcam"].raw, seven["gradcam"].raw)  # Grad-CAM draws nothing
    assert cached_methods(masked, sample, target=3, settings=settings) == {"smoothgrad", "gradcam"}
    for bad, match in (({"samples": 0}, "samples"), ({"samples": 65}, "samples"), ({"samples": True}, "samples"),
                       ({"seed": -1}, "seed"), ({"seed": 2**31}, "seed")):
        with pytest.raises(CamlabError, match=match):
            MethodSettings(**bad)


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


def test_batched_readouts_equal_per_method_metrics_and_carry_the_controls(masked, sample):
    result = explain_cached(masked, sample, ["gradcam", "hirescam"])
    target = int(result.classes[0])
    rows = faithfulness(masked.loaded.model, sample, result, steps=4)
    assert set(rows) == {"gradcam", "hirescam", "control: all-zero", "control: all-ones", "control: random"}
    model, classes = masked.loaded.model, torch.tensor([target])
    for method in ("gradcam", "hirescam"):
        maps = result[method].display
        alone = confidence_metrics(model, sample[None], maps, classes)
        curves = insertion_deletion(model, sample[None], maps, classes, 4)
        matched = confidence_metrics(model, sample[None], matched_control(maps, seed=0), classes)
        at_20 = fixed_coverage_metrics(model, sample[None], maps, classes, (20,))
        assert rows[method]["average_drop"] == pytest.approx(float(alone["average_drop"][0]), abs=1e-3)
        assert rows[method]["average_drop_matched"] == pytest.approx(float(matched["average_drop"][0]), abs=1e-3)
        assert rows[method]["average_drop@20"] == pytest.approx(float(at_20["average_drop@20"][0]), abs=1e-3)
        assert rows[method]["insertion_auc"] == pytest.approx(float(curves["insertion_auc"][0]), abs=1e-5)
        assert len(rows[method]["deletion_curve"]) == 5
    assert rows["control: all-ones"]["average_drop"] == pytest.approx(0, abs=1e-3)  # up to batch-size rounding


class Stubborn(torch.nn.Module):
    """Always says class 0, whatever the image: every readout is saturated."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = self.model(x)
        return logits + torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), logits.shape[1]) * 1e3


def test_saturated_readouts_say_so(masked, sample):
    result = explain_cached(masked, sample, ["gradcam"], target=3)
    rows = faithfulness(Stubborn(masked.loaded.model), sample, result, class_names=masked.loaded.class_names, steps=4)
    notes = " ".join(rows["gradcam"]["notes"])
    assert "every masked image, controls included, is classified as circle" in notes
    assert "no better than showing nothing" in notes


def test_readouts_include_leakage_only_with_a_region_and_are_cached(masked, sample):
    result = explain_cached(masked, sample, ["gradcam", "layercam"])
    stages = []
    with_region = readouts_cached(masked, sample, result, region=masked.unseen, steps=4,
                                  on_progress=lambda done, total: stages.append((done, total)))
    assert stages == [(done, 5) for done in range(1, 6)]  # explain, leakage, confidence, coverage, insdel
    assert with_region["layercam"]["leakage_l2"] < 0.01 < with_region["gradcam"]["leakage_l2"]
    assert with_region["layercam"]["layer_leakage_l2"] == 0  # element-wise: exactly nothing on the walled cells
    cached = readouts_cached(masked, sample, result, region=masked.unseen, steps=4,
                             on_progress=lambda done, total: stages.append((done, total)))
    assert cached["gradcam"] is with_region["gradcam"] and len(stages) == 5  # cached: no work, no bar
    without = readouts_cached(masked, sample, result, region=None, steps=4)
    assert "leakage_l2" not in without["gradcam"] and "average_drop" in without["gradcam"]


def test_check_layer_accepts_spatial_layers_and_explains_bad_names(masked):
    assert check_layer(masked, "features.40") == "features.40"
    with pytest.raises(CamlabError, match="features.42"):
        check_layer(masked, "features.422")
    with pytest.raises(CamlabError, match="spatial"):
        check_layer(masked, "classifier.0")


def test_gradient_agreement_is_lower_for_the_regularised_model(sample):
    values = {}
    for name in ("baseline_vgg", "guided_vgg"):
        entry = open_shipped(name, "cpu")
        images = torch.stack([StackedDataset("stack-shapes", "test", size=224)[i][0] for i in range(8)])
        values[name] = np.mean([gradient_agreement(explain_cached(entry, image, ["gradient", "guided_backprop"]))
                                for image in images])
    assert values["guided_vgg"] < values["baseline_vgg"]


def test_models_that_cannot_be_explained_are_refused_at_load():
    grey = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with pytest.raises(CamlabError, match=r"cannot run on images of shape \(1, 3, 32, 32\)"):
        model_entry(LoadedModel(grey, "grey", "custom", ["a", "b"], None, input_size=32), "grey", "cpu")
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    with pytest.raises(CamlabError, match="no layer with a spatial"):
        model_entry(LoadedModel(flat, "flat", "custom", ["a", "b"], None, input_size=32), "flat", "cpu")


class _NotLogits(torch.nn.Module):
    """A CNN whose forward returns a tuple or a dict instead of a logits tensor."""

    def __init__(self, wrap):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 2)
        self.wrap = wrap

    def forward(self, x):
        logits = self.head(self.conv(x).mean((2, 3)))
        return self.wrap(logits)


@pytest.mark.parametrize("wrap", [lambda z: (z, z), lambda z: {"logits": z}], ids=["tuple", "dict"])
def test_a_model_that_returns_no_logits_tensor_is_one_clear_error_at_load(wrap):
    loaded = LoadedModel(_NotLogits(wrap).eval(), "odd", "custom", ["a", "b"], None, input_size=32)
    with pytest.raises(CamlabError, match="must be a classifier returning logits of shape"):
        model_entry(loaded, "odd", "cpu")


def test_the_yielding_lock_waits_for_a_quiet_moment_but_never_for_ever():
    lock = YieldingLock()
    start = time.monotonic()
    lock.wait_quiet(0.2, 5.0)  # never used: quiet at once
    assert time.monotonic() - start < 0.1
    with lock:
        pass
    start = time.monotonic()
    lock.wait_quiet(0.2, 5.0)  # just used: waits until it has been quiet for 0.2 s
    assert 0.15 < time.monotonic() - start < 1.0
    released = threading.Event()

    def hold():
        with lock:
            released.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    start = time.monotonic()
    lock.wait_quiet(0.1, 0.5)  # held throughout: gives up after `longest`
    assert 0.45 < time.monotonic() - start < 1.0
    released.set()
    holder.join()


def test_a_slow_method_runs_on_a_copy_without_the_models_lock_and_can_be_stopped(masked, sample):
    views, progress = [], []
    image = StackedDataset("stack-shapes", "test", size=224)[7][0]

    def on_progress(done, total):
        progress.append((done, total))
        if len(progress) == 1:  # another visitor's fast view, while the slow method runs
            other = threading.Thread(target=lambda: views.append(explain_cached(masked, sample, ["hirescam"])))
            other.start()
            other.join(timeout=60)
            assert not other.is_alive(), "a fast view waited for the slow method"

    result = explain_cached(masked, image, ["gradcam", "scorecam"], on_progress=on_progress)
    assert views and progress[-1][0] == progress[-1][1] and len(progress) > 1
    alone = camlab.explain(masked.loaded.model, image[None], ["scorecam"], default_layer(masked))["scorecam"]
    assert torch.allclose(result["scorecam"].raw, alone.raw, atol=1e-5, rtol=1e-4)
    assert all(not m._forward_hooks for m in masked.slow.model.modules())

    def stop(done, total):
        raise KeyboardInterrupt  # what a rerun does to the page's script: an exception at the next report

    with pytest.raises(KeyboardInterrupt):
        explain_cached(masked, StackedDataset("stack-shapes", "test", size=224)[8][0], ["ablationcam"], on_progress=stop)
    assert not masked.slow.lock.locked() and all(not m._forward_hooks for m in masked.slow.model.modules())
    assert "ablationcam" not in cached_methods(masked, StackedDataset("stack-shapes", "test", size=224)[8][0])


def test_the_manifest_identifies_the_model_by_its_weights_once_per_entry(masked):
    from camlab.export import model_identity

    record = model_record(masked)
    assert record is model_record(masked)  # hashed once, then read from the entry's cache
    loaded = masked.loaded
    assert record == model_identity(loaded.model, loaded.name, loaded.architecture, loaded.card)
    assert record["name"] == "masked_vgg" and len(record["weights_sha256"]) == 64


def test_readouts_are_named_in_words_and_judged_against_their_controls_on_the_image():
    assert words("average_drop@10_matched") == "Average Drop ↓, top 10% of the map, its matched control"
    assert words("insertion_auc") == "insertion AUC ↑"
    readouts = {"good": {"average_drop": 10.0, "average_drop_matched": 50.0, "average_drop@20": 5.0,
                         "insertion_auc": 0.9, "deletion_auc": 0.1},
                "bad": {"average_drop": 60.0, "average_drop_matched": 50.0, "average_drop@20": 70.0,
                        "insertion_auc": 0.2, "deletion_auc": 0.6},
                "control: random": {"average_drop": 40.0, "average_drop@20": 60.0, "insertion_auc": 0.5,
                                    "deletion_auc": 0.3}}
    verdicts = image_verdicts(readouts)
    assert set(verdicts) == {"good", "bad"} and all(beats for _, beats in verdicts["good"])
    assert len(verdicts["bad"]) == 4 and not any(beats for _, beats in verdicts["bad"])


def test_class_names_given_by_a_visitor_replace_the_numbers_and_share_the_model(masked):
    named = with_class_names(masked, "\n".join(f"shape {i}" for i in range(8)) + "\n")
    assert named.loaded.class_names[3] == "shape 3" and masked.loaded.class_names[3] == "star"
    assert named.lock is masked.lock and named.cache is masked.cache and named.slow is masked.slow
    assert with_class_names(masked, json.dumps(list("abcdefgh"))).loaded.class_names[-1] == "h"
    for text, message in (("a\nb", "8 outputs, and the class list gives 2"), ("[1, 2", "not a JSON list"),
                          (json.dumps([str(i) for i in range(7)] + ["x" * 300]), "1 to 200 printable")):
        with pytest.raises(CamlabError, match=message):
            with_class_names(masked, text)


def test_the_benchmark_page_bounds_road_and_runs_it_on_a_few_images(masked):
    from camlab.app.state import MAX_ROAD_IMAGES, run_evaluation

    with pytest.raises(CamlabError, match="ROAD runs on at most"):
        run_evaluation(masked, StackedDataset("stack-shapes", "test", length=MAX_ROAD_IMAGES + 1), ["gradcam"],
                       ("road",), 4)
    outcome = run_evaluation(masked, StackedDataset("stack-shapes", "test", length=1), ["gradcam"], ("road",), 4)
    assert {"road_morf", "road_lerf", "road_combined"} <= set(outcome.table["gradcam"])
