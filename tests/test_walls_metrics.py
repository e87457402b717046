"""Drawn walls, blinded models, leakage and faithfulness metrics, Conceptor-CAM, evaluation."""
import csv

import pytest
import torch
from torch import nn

import camlab
from camlab.conceptor import conceptor, conceptor_and, conceptor_not, conceptor_or, weighted_correlation
from camlab.errors import CamlabError
from camlab.metrics import (cascading_randomisation, confidence_metrics, dead_zone_ratio, insertion_deletion, leakage,
                            raw_leakage, spearman)
from camlab.walls import BlindModel, FILLS, check_wall, shapes_from_canvas, wall_mask
from tests.test_engine import TinyNet


def test_wall_mask_is_the_union_of_rectangles_polygons_and_strokes():
    rect = wall_mask([{"type": "rect", "x0": 10, "y0": 5, "x1": 1, "y1": 0}], 32, 32)
    assert rect.sum() == 10 * 6 and rect[0:6, 1:11].all()
    triangle = wall_mask([{"type": "polygon", "points": [[0, 0], [31, 0], [0, 31]]}], 32, 32)
    assert triangle[1, 1] and not triangle[30, 30]
    stroke = wall_mask([{"type": "stroke", "points": [[0, 16], [31, 16]], "width": 3}], 32, 32)
    assert stroke[16].all() and not stroke[0].any()
    union = wall_mask([{"type": "rect", "x0": 10, "y0": 5, "x1": 1, "y1": 0},
                       {"type": "stroke", "points": [[0, 16], [31, 16]], "width": 3}], 32, 32)
    assert torch.equal(union, rect | stroke)
    with pytest.raises(CamlabError, match="unknown wall shape"):
        wall_mask([{"type": "circle"}], 8, 8)
    with pytest.raises(CamlabError, match="malformed rect"):
        wall_mask([{"type": "rect", "x0": 1}], 8, 8)


def test_canvas_objects_become_image_coordinates():
    canvas = {"objects": [
        {"type": "rect", "left": 10, "top": 20, "width": 30, "height": 40, "scaleX": 1, "scaleY": 1},
        {"type": "path", "path": [["M", 0, 0], ["Q", 5, 5, 10, 10], ["L", 20, 10]], "strokeWidth": 4},
        {"type": "Rect", "left": 0, "top": 0, "width": 2, "height": 2},  # fabric.js 6 spelling
        {"type": "Polygon", "left": 10, "top": 10, "width": 20, "height": 20, "pathOffset": {"x": 50, "y": 50},
         "points": [{"x": 40, "y": 40}, {"x": 60, "y": 40}, {"x": 60, "y": 60}]},
    ]}
    shapes = shapes_from_canvas(canvas, scale=0.5)
    assert shapes[0] == {"type": "rect", "x0": 5.0, "y0": 10.0, "x1": 20.0, "y1": 30.0}
    assert shapes[1]["type"] == "stroke" and shapes[1]["points"][-1] == [10.0, 5.0] and shapes[1]["width"] == 2.0
    assert shapes[2] == {"type": "rect", "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0}
    assert shapes[3] == {"type": "polygon", "points": [[5.0, 5.0], [15.0, 5.0], [15.0, 15.0]]}


def test_empty_full_and_wrongly_sized_walls_are_refused():
    with pytest.raises(CamlabError, match="covers no pixel"):
        check_wall(torch.zeros(8, 8, dtype=torch.bool), (8, 8))
    with pytest.raises(CamlabError, match="whole image"):
        check_wall(torch.ones(8, 8, dtype=torch.bool), (8, 8))
    with pytest.raises(CamlabError, match=r"the wall is \(4, 4\) but the image is \(8, 8\)"):
        check_wall(torch.ones(4, 4), (8, 8))


@pytest.mark.parametrize("fill", FILLS)
def test_blinded_model_output_is_bit_identical_when_walled_pixels_change(fill):
    wall = wall_mask([{"type": "rect", "x0": 2, "y0": 2, "x1": 9, "y1": 12}], 16, 16)
    blind = BlindModel(TinyNet().eval(), wall, fill=fill)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 16, 16)
    changed = images.clone()
    changed[:, :, wall] = torch.rand_like(changed[:, :, wall]) * 100
    visible = images.clone()
    visible[:, :, 14:, 14:] += 1
    with torch.no_grad():
        assert torch.equal(blind(images), blind(changed))
        assert not torch.equal(blind(images), blind(visible))


def test_blinded_model_works_with_the_engine():
    wall = wall_mask([{"type": "rect", "x0": 0, "y0": 0, "x1": 15, "y1": 7}], 16, 16)
    blind = BlindModel(TinyNet().eval(), wall)
    result = camlab.explain(blind, torch.rand(2, 3, 16, 16), ["hirescam", "gradient"], target_layer="model.relu2")
    assert (result["gradient"].raw[:, :, wall] == 0).all()  # no pixel gradient through the wall


def test_leakage_metrics_on_hand_made_maps():
    wall = torch.zeros(8, 8, dtype=torch.bool)
    wall[4:] = True
    inside = torch.zeros(1, 8, 8)
    inside[0, 5, 5] = 1
    outside = torch.zeros(1, 8, 8)
    outside[0, 1, 1] = 1
    half = torch.ones(1, 8, 8)
    assert {k: float(v) for k, v in leakage(inside, wall).items()} == {
        "dead_zone_l2": 1.0, "mass_leakage": 1.0, "peak_in_wall": 1.0, "wall_above_0.5": 1 / 32}
    assert all(float(v) == 0 for v in leakage(outside, wall).values())
    assert float(dead_zone_ratio(half, wall)) == pytest.approx(0.5 ** 0.5)
    zero = leakage(torch.zeros(1, 8, 8), wall)
    assert all(torch.isfinite(v).all() and float(v) == 0 for v in zero.values())
    with pytest.raises(CamlabError, match="the wall is"):
        dead_zone_ratio(half, torch.zeros(4, 4))
    raw = torch.zeros(1, 2, 2)
    raw[0, 1, 0] = 3
    assert float(raw_leakage(raw, wall)["mass_leakage"]) == 1.0


def test_constant_map_of_ones_gives_zero_drop_increase_and_gain():
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(4, 3, 16, 16)
    classes = model(images).argmax(1)
    scores = confidence_metrics(model, images, torch.ones(4, 16, 16), classes)
    for key in ("average_drop", "increase_in_confidence", "average_gain"):
        assert float(scores[key].abs().max()) == 0, key
    dark = confidence_metrics(model, images, torch.zeros(4, 16, 16), classes, space="normalized")
    assert torch.isfinite(dark["average_drop"]).all()
    with pytest.raises(CamlabError, match="unknown masking space"):
        confidence_metrics(model, images, torch.ones(4, 16, 16), classes, space="logit")


class QuadrantModel(nn.Module):
    """Class 0's logit counts bright pixels in the top-left quadrant: blurring or zeroing them
    removes the evidence, nothing else matters."""

    def forward(self, x):
        top_left = (x[:, :, :8, :8] - 0.5).clamp(min=0).mean(dim=(1, 2, 3))
        return torch.stack([20 * top_left, torch.zeros_like(top_left)], dim=1)


def test_insertion_and_deletion_reward_the_map_that_points_at_the_evidence():
    checkerboard = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float()
    images = checkerboard.expand(2, 3, 16, 16).clone()
    classes = torch.zeros(2, dtype=torch.long)
    right = torch.zeros(2, 16, 16)
    right[:, :8, :8] = 1
    wrong = 1 - right
    good = insertion_deletion(QuadrantModel(), images, right, classes, steps=8)
    bad = insertion_deletion(QuadrantModel(), images, wrong, classes, steps=8)
    assert (good["deletion_auc"] < bad["deletion_auc"]).all()
    assert (good["insertion_auc"] > bad["insertion_auc"]).all()
    clean = QuadrantModel()(images).softmax(1)[:, 0]
    assert torch.allclose(good["deletion_curve"][:, 0], clean) and torch.allclose(good["insertion_curve"][:, -1], clean)
    assert good["insertion_curve"].shape == (2, 9)


def test_spearman_and_cascading_randomisation():
    a = torch.arange(10.0)[None]
    assert float(spearman(a, a)) == pytest.approx(1) and float(spearman(a, -a)) == pytest.approx(-1)
    model, images = TinyNet().eval(), torch.rand(2, 3, 16, 16)
    report = cascading_randomisation(model, images, "gradcam", "relu2", model(images).argmax(1))
    assert [name for name, _ in report] == ["fc", "conv2", "conv1"]
    assert all(-1 <= c <= 1 for _, c in report) and report[-1][1] < 0.99


def _random_conceptor(seed, k=6, aperture=2.0):
    generator = torch.Generator().manual_seed(seed)
    states = torch.randn(1, 40, k, generator=generator, dtype=torch.float64)
    states[:, :, -1] = 0  # a direction with no evidence makes the conceptors singular
    return conceptor(weighted_correlation(states, torch.rand(1, 40, generator=generator, dtype=torch.float64)), aperture)


def test_conceptor_algebra_laws():
    a, b = _random_conceptor(0), _random_conceptor(1)
    values = torch.linalg.eigvalsh(a)
    assert (values >= -1e-12).all() and (values < 1).all()
    assert torch.allclose(conceptor_not(conceptor_not(a)), a)
    assert torch.allclose(conceptor_and(a, b), conceptor_and(b, a), atol=1e-8)
    assert torch.allclose(conceptor_not(conceptor_and(a, b)), conceptor_or(conceptor_not(a), conceptor_not(b)), atol=1e-8)
    and_values = torch.linalg.eigvalsh(conceptor_and(a, b))
    assert (and_values >= -1e-8).all() and (and_values < 1).all()
    assert (and_values.max() <= torch.minimum(values.max(), torch.linalg.eigvalsh(b).max()) + 1e-6)


def test_conceptor_cams_run_batched_and_match_per_image_results():
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    names = ["conceptorcam", "conceptor-gradcam", "conceptor-hirescam"]
    batched = camlab.explain(model, images, names, target_layer="relu2")
    for i in range(3):
        single = camlab.explain(model, images[i : i + 1], names, target_layer="relu2", targets=batched.classes[i : i + 1])
        for name in names:
            assert torch.allclose(batched[name].raw[i], single[name].raw[0], atol=1e-6)
    evidence = batched["conceptorcam"].raw
    assert (evidence >= 0).all() and (evidence <= 1).all() and evidence.std() > 0


def test_evaluate_command_writes_csv_and_markdown(tmp_path):
    from camlab.evaluate import main

    out = tmp_path / "eval"
    results = main(["--model", "models/masked_vgg.pt", "--images", "4", "--batch-size", "4", "--steps", "4",
                    "--methods", "gradcam", "hirescam", "conceptor-gradcam", "--out", str(out)])
    rows = list(csv.reader(out.with_suffix(".csv").open()))
    assert rows[0][:2] == ["method", "dead_zone_l2"] and len(rows) == 4
    assert "average_drop" in rows[0] and "insertion_auc" in rows[0]
    assert results["hirescam"]["dead_zone_l2"] < 0.01 < results["gradcam"]["dead_zone_l2"]
    assert "| conceptor-gradcam |" in out.with_suffix(".md").read_text()


def test_evaluate_sanity_group_reports_cascading_randomisation_on_the_first_batch():
    from camlab.data import StackedDataset
    from camlab.evaluate import evaluate
    from camlab.models import masked_vgg

    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=32, masked_rows=0).eval()
    data = StackedDataset("stack-shapes", "test", size=32, length=4)
    table = evaluate(model, None, data, ["gradcam", "randomcam"], ("sanity",), batch_size=2, progress=False).table
    for method in ("gradcam", "randomcam"):
        assert set(table[method]) == {"seconds_per_image", "sanity_rho_top", "sanity_rho_all"}
        assert -1 <= table[method]["sanity_rho_all"] <= 1
    # Random channel weights ignore the output layer, so randomising it leaves Random-CAM unchanged.
    assert table["randomcam"]["sanity_rho_top"] == pytest.approx(1.0)
    assert table["gradcam"]["sanity_rho_top"] < 0.99
