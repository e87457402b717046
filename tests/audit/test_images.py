"""The auditor's images: class folders matched by name, flat folders, CSVs, zips; bad files skipped and named."""
import io
import zipfile

import cv2
import numpy as np
import pytest
import torch

from camlab.audit.images import AuditImages, Preprocessing, open_images, unpack_zip
from camlab.errors import CamlabError

NAMES = ["tench", "goldfish", "great white shark"]
PRE = Preprocessing(32, 1.0)


def _png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 48, 3), value, np.uint8))


def test_class_folders_are_matched_to_the_models_classes_by_name_not_by_position(tmp_path):
    _png(tmp_path / "goldfish" / "a.png", 10)  # the model's class 1, though the first folder in sorted order
    _png(tmp_path / "great_white_shark" / "deeper" / "b.png", 20)  # spaces written as '_', a nested folder
    (tmp_path / "goldfish" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "goldfish" / "notes.txt").write_text("no image")
    (tmp_path / "stray.png").write_bytes(b"")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    found = open_images(tmp_path, NAMES, PRE, tmp_path)
    assert [(i.path, i.label) for i in found.items] == [("goldfish/a.png", 1), ("great_white_shark/deeper/b.png", 2)]
    skipped = dict(found.skipped)
    assert set(skipped) == {"goldfish/broken.jpg", "goldfish/notes.txt", "stray.png"}
    assert "could not read this file as an image" in skipped["goldfish/broken.jpg"]
    assert "no class" in skipped["stray.png"]
    image, label = AuditImages(found, PRE)[1]
    assert image.shape == (3, 32, 32) and label == 2 and float(image.max()) == pytest.approx(20 / 255)
    assert len(found.items[0].sha256) == 64


def test_a_folder_that_names_no_class_is_an_error_before_any_work(tmp_path):
    _png(tmp_path / "goldfsh" / "a.png", 10)
    with pytest.raises(CamlabError, match="'goldfsh' names no class of the model.*closest: goldfish"):
        open_images(tmp_path, NAMES, PRE, tmp_path)


def test_a_flat_folder_is_unlabelled_and_a_folder_of_nothing_readable_is_an_error(tmp_path):
    _png(tmp_path / "x.png", 5)
    found = open_images(tmp_path, NAMES, PRE, tmp_path)
    assert [(i.path, i.label) for i in found.items] == [("x.png", None)] and not found.labelled
    assert AuditImages(found, PRE)[0][1] == -1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bad.png").write_bytes(b"nope")
    with pytest.raises(CamlabError, match="no readable image.*bad.png"):
        open_images(empty, NAMES, PRE, tmp_path)


def test_a_csv_gives_labels_by_name_or_index_and_never_reads_outside_its_folder(tmp_path):
    _png(tmp_path / "pics" / "one.png", 1)
    _png(tmp_path / "pics" / "two.png", 2)
    _png(tmp_path.parent / "secret.png", 3)
    table = tmp_path / "labels.csv"
    table.write_text("file,label\npics/one.png,Great White Shark\npics/two.png,0\n../secret.png,tench\nmissing.png,0\n")
    found = open_images(table, NAMES, PRE, tmp_path)
    assert [(i.path, i.label) for i in found.items] == [("pics/one.png", 2), ("pics/two.png", 0)]
    assert dict(found.skipped) == {"../secret.png": "outside the CSV's folder", "missing.png": "no such file"}
    (tmp_path / "bad.csv").write_text("path,class\n")
    with pytest.raises(CamlabError, match="file,label"):
        open_images(tmp_path / "bad.csv", NAMES, PRE, tmp_path)


def test_a_zip_unpacks_only_regular_files_inside_its_folder(tmp_path):
    buffer = io.BytesIO()
    ok, png = cv2.imencode(".png", np.zeros((20, 20, 3), np.uint8))
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("set/tench/a.png", png.tobytes())
        archive.writestr("../escape.png", png.tobytes())
        link = zipfile.ZipInfo("set/tench/link.png")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    into = tmp_path / "unpacked"
    into.mkdir()
    root = unpack_zip(buffer.getvalue(), into)
    assert root == (into / "set").resolve()
    assert sorted(p.name for p in into.rglob("*") if p.is_file()) == ["a.png"]
    assert not (tmp_path / "escape.png").exists()
    archive_path = tmp_path / "set.zip"
    archive_path.write_bytes(buffer.getvalue())
    assert [i.label for i in open_images(archive_path, NAMES, PRE, tmp_path / "work").items] == [0]
    with pytest.raises(CamlabError, match="not a readable zip"):
        unpack_zip(b"PK\x03\x04 broken", into)


def test_generated_splits_carry_their_object_masks(tmp_path):
    from camlab.study.data import CLASSES

    found = open_images("generated:stack-shapes/test", list(CLASSES), Preprocessing(64), tmp_path, count=3)
    image, label, mask = AuditImages(found, Preprocessing(64))[2]
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and mask.any()
    assert found.items[2].label == label and found.labelled
    with pytest.raises(CamlabError, match="other classes"):
        open_images("generated:stack-shapes/test", NAMES, Preprocessing(64), tmp_path)
    with pytest.raises(CamlabError, match="generated:<variant>/<split>"):
        open_images("generated:nope/test", list(CLASSES), Preprocessing(64), tmp_path)
    assert torch.equal(image, AuditImages(found, Preprocessing(64))[2][0])
