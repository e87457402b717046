"""camlab-audit end to end on a small camlab checkpoint and a folder written from the generator:
the four files, every number of the report equal to summary.csv's, nothing fetched from a network,
two processes writing what one writes."""
import csv
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import cv2
import pytest
import torch

from camlab.audit.cli import main
from camlab.study.data import CLASSES, generate_image
from camlab.study.wallresnet import masked_resnet
from camlab.study.wallvgg import masked_vgg, save_checkpoint
from tests.hostile import HOSTILE_CLASS_NAMES, hostile_checkpoint

SIZE = 64


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    torch.manual_seed(0)
    model = masked_vgg(width=1 / 16, input_size=SIZE, masked_rows=1).eval()
    save_checkpoint(root / "tiny.pt", model, "masked_vgg", list(CLASSES))
    for index in range(6):
        image, label = generate_image("stack-shapes", "test", index, SIZE)
        folder = root / "images" / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (root / "images" / CLASSES[0]).mkdir(exist_ok=True)
    (root / "images" / CLASSES[0] / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    return root


def _run(world, out, *extra):
    main(["--model", str(world / "tiny.pt"), "--images", str(world / "images"), "--methods", "gradcam", "hirescam",
          "--steps", "4", "--batch-size", "4", "--out", str(out), "--device", "cpu", *extra])


class _Cells(HTMLParser):
    """Every <td> that names the summary value it shows, and every external reference."""

    def __init__(self):
        super().__init__()
        self.cells, self.external, self._open = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        if tag == "td" and "data-metric" in attrs:
            self._open = [attrs["data-row"], attrs["data-metric"], ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._open is not None:
            self.cells.append(tuple(self._open))
            self._open = None


def test_the_audit_writes_a_self_contained_report_whose_numbers_are_the_csvs(world):
    out = world / "out"
    _run(world, out, "--wall", "0,40,64,64")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "readouts.csv", "report.html", "summary.csv"]
    report = (out / "report.html").read_text()
    parsed = _Cells()
    parsed.feed(report)
    assert parsed.external == []  # opens offline: every image is a data: URL, no script, no stylesheet link
    summary = {(row, metric): (float(value), shown) for row, metric, value, shown in
               list(csv.reader((out / "summary.csv").open()))[1:] if " vs " not in metric}
    assert len(parsed.cells) > 40
    for row, metric, text in parsed.cells:
        assert summary[(row, metric)][1] == text, (row, metric)
    comparisons = {(r[0], r[1]): r[3] for r in list(csv.reader((out / "summary.csv").open()))[1:] if " vs " in r[1]}
    for method, column, text in re.findall(r'data-row="([^"]+)" data-comparison="([^"]+)">([^<]+)<', report):
        assert comparisons[(method, column)] == text.replace("&#x27;", "'")
    assert ("gradcam", "insertion_auc vs Random-CAM") in comparisons

    rows = list(csv.DictReader((out / "readouts.csv").open()))
    assert {r["method"] for r in rows} == {"gradcam", "hirescam", "randomcam", "control: all-zero", "control: all-ones",
                                           "control: random"}
    assert len({r["image"] for r in rows}) == 6 and all("/" in r["image"] for r in rows)
    gradcam = [float(r["average_drop"]) for r in rows if r["method"] == "gradcam"]
    assert sum(gradcam) / 6 == pytest.approx(summary[("gradcam", "average_drop")][0], rel=1e-5)
    assert all(float(r["layer_leakage_l2"]) == 0 for r in rows if r["method"] == "hirescam")  # behind the wall
    assert 0 <= summary[("model", "occlusion_drop")][0] <= 100  # the wall's pixels removed: what the model loses

    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]["files"]) == 6 and all(len(f["sha256"]) == 64 for f in manifest["images"]["files"])
    assert manifest["images"]["skipped"][0]["path"] == "circle/truncated.png"
    assert manifest["model"]["weights_sha256"] and manifest["command"].startswith("camlab-audit --model")
    assert manifest["wall"]["description"].startswith("the rectangle") and manifest["versions"]["torch"]
    for words in ("How to read this", "Does each method beat its controls?", "stay in distribution", "Accuracy",
                  "The most telling images", "Skipped files", "circle/truncated.png"):
        assert words in report, words


def test_an_audit_asked_for_road_reports_it_with_its_controls(world):
    out = world / "road"
    _run(world, out, "--metrics", "road")
    report = (out / "report.html").read_text()
    parsed = _Cells()
    parsed.feed(report)
    shown = {(row, metric) for row, metric, _ in parsed.cells}
    assert {("gradcam", "road_combined"), ("control: random", "road_combined"), ("randomcam", "road_morf")} <= shown
    comparisons = {r[1] for r in list(csv.reader((out / "summary.csv").open()))[1:] if r[0] == "gradcam"}
    assert {"road_combined vs random", "road_combined vs Random-CAM"} <= comparisons
    assert "<h2>ROAD</h2>" in report


def test_hostile_class_names_are_escaped_in_the_report(tmp_path):
    import html

    checkpoint = tmp_path / "hostile.pt"
    hostile_checkpoint(checkpoint)
    image, _ = generate_image("stack-shapes", "test", 0, 32)
    for index in range(len(HOSTILE_CLASS_NAMES)):
        cv2.imwrite(str(tmp_path / f"{index}.png"), image)
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(f"{i}.png,{i}\n" for i in range(len(HOSTILE_CLASS_NAMES))))
    main(["--model", str(checkpoint), "--images", str(tmp_path / "labels.csv"), "--methods", "gradcam", "--steps", "2",
          "--metrics", "confidence", "--out", str(tmp_path / "out"), "--device", "cpu"])
    report = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in report.lower() and "<img src=x" not in report.lower()
    for name in HOSTILE_CLASS_NAMES:  # each in the per-class accuracy table, as text
        assert f"<td>{html.escape(name)}</td>" in report, name


def test_bad_arguments_end_in_one_clear_message(world, tmp_path):
    with pytest.raises(SystemExit, match="camlab-audit: .*not a folder"):
        main(["--model", str(world / "tiny.pt"), "--images", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="camlab-audit: .*does not lie inside"):
        _run(world, tmp_path / "out", "--wall", "0,0,640,10")


def test_two_processes_write_the_report_one_process_writes(world, tmp_path):
    common = ["-m", "camlab.audit.cli", "--model", str(world / "tiny.pt"), "--images", str(world / "images"),
              "--methods", "gradcam", "--steps", "4", "--batch-size", "2", "--device", "cpu",
              "--metrics", "confidence", "insdel", "leakage"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, *common, "--out", str(tmp_path / "one")], check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *common,
                    "--out", str(tmp_path / "two")], check=True, env=env, timeout=300)
    one = list(csv.reader((tmp_path / "one" / "readouts.csv").open()))
    two = list(csv.reader((tmp_path / "two" / "readouts.csv").open()))
    assert one[0] == two[0] and len(one) == len(two)
    for a, b in zip(one[1:], two[1:]):
        for x, y in zip(a, b):
            assert x == y or abs(float(x) - float(y)) < 1e-6
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["settings"]["processes"] == 2


def test_the_tie_orders_reach_the_readouts_and_the_manifest(world, tmp_path):
    spreads = {}
    for orders in (1, 3):
        out = tmp_path / str(orders)
        _run(world, out, "--metrics", "insdel", "--tie-orders", str(orders))
        assert json.loads((out / "manifest.json").read_text())["settings"]["tie_orders"] == orders
        summary = {(row, metric): float(value) for row, metric, value, _ in
                   list(csv.reader((out / "summary.csv").open()))[1:] if " vs " not in metric}
        spreads[orders] = summary.get(("hirescam", "insertion_auc_order_sd"))
    assert spreads[1] is None  # one order: no spread to report
    assert spreads[3] > 0  # HiRes-CAM's display maps tie at 0: other orders give other curves


def test_audits_leave_road_out_unless_asked():
    from camlab.audit.run import AUDIT_GROUPS

    assert "road" not in AUDIT_GROUPS and {"sanity", "distribution", "insdel"} <= set(AUDIT_GROUPS)


def test_your_own_masks_give_the_localisation_camlabs_generated_masks_give(world, tmp_path):
    from camlab.study.data import generate_sample

    masks = tmp_path / "masks"
    for index in range(6):
        _, label, mask = generate_sample("stack-shapes", "test", index, SIZE)
        folder = masks / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        if index != 5:  # the last image has no mask: skipped, with its reason
            cv2.imwrite(str(folder / f"{index:02d}.png"), mask.astype("uint8") * 255)
    own, generated = tmp_path / "own", tmp_path / "generated"
    _run(world, own, "--metrics", "localisation", "--masks", str(masks))
    main(["--model", str(world / "tiny.pt"), "--images", "generated:stack-shapes/test", "--count", "6", "--methods",
          "gradcam", "hirescam", "--batch-size", "4", "--out", str(generated), "--device", "cpu",
          "--metrics", "localisation"])

    def by_image(out):
        rows = csv.DictReader((out / "readouts.csv").open())
        return {(int(re.search(r"(\d+)[_.]", r["image"].rsplit("/", 1)[-1]).group(1)), r["method"]):
                (float(r["pointing_game"]), float(r["relevance_mass"]), float(r["relevance_rank"]))
                for r in rows if r["method"] != "control: random"}

    ours, theirs = by_image(own), by_image(generated)
    assert {index for index, _ in ours} == {0, 1, 2, 3, 4}
    for key, values in ours.items():
        assert values == pytest.approx(theirs[key], abs=1e-6), key
    manifest = json.loads((own / "manifest.json").read_text())
    assert all(f["mask"].endswith(".png") and len(f["mask_sha256"]) == 64 for f in manifest["images"]["files"])
    assert any("no mask" in s["why"] for s in manifest["images"]["skipped"])
    report = (own / "report.html").read_text()
    assert "the masks in masks/" in report and "Which readouts to trust" in report


def test_masks_of_another_size_or_for_generated_images_are_refused(world, tmp_path):
    masks = tmp_path / "masks" / CLASSES[0]
    masks.mkdir(parents=True)
    for path in (world / "images" / CLASSES[0]).glob("*.png"):
        cv2.imwrite(str(masks / path.name), 255 * torch.ones(SIZE // 2, SIZE).numpy().astype("uint8"))
    with pytest.raises(SystemExit, match="camlab-audit: none of the .* has a readable mask"):
        _run(world, tmp_path / "out", "--metrics", "localisation", "--masks", str(tmp_path / "masks"))
    with pytest.raises(SystemExit, match="bring their own masks"):
        main(["--model", str(world / "tiny.pt"), "--images", "generated:stack-shapes/test", "--count", "2",
              "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "out"), "--device", "cpu"])


def test_a_walled_resnet_is_audited_on_its_own_wall(world, tmp_path):
    """No pixel is behind a walled ResNet's wall: leakage is measured on the layer4 cells it never reads."""
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "masked_resnet.pt", masked_resnet(width=0.25, input_size=SIZE, masked_rows=2).eval(),
                           "masked_resnet", list(CLASSES))
    out = tmp_path / "out"
    main(["--model", str(path), "--images", str(world / "images"), "--methods", "gradcam", "hirescam", "--steps", "4",
          "--batch-size", "4", "--out", str(out), "--device", "cpu", "--metrics", "leakage"])
    assert "Measured in the model&#x27;s own wall: the 8 of 16 cells of layer4 it never reads" in (
        out / "report.html").read_text()
    rows = list(csv.DictReader((out / "readouts.csv").open()))
    assert all(float(r["layer_leakage_l2"]) == 0 for r in rows if r["method"] == "hirescam")
    assert any(float(r["layer_leakage_l2"]) > 0 for r in rows if r["method"] == "gradcam")
