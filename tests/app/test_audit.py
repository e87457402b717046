"""The Audit page's work: bounded before any decoding, on the entry's own copy of its model."""
import io
import zipfile

import cv2
import pytest

from camlab.app import audit as page_audit
from camlab.app.audit import audit_on_page, first_image
from camlab.app.sources import open_shipped
from camlab.errors import CamlabError
from camlab.study.data import CLASSES, generate_sample


@pytest.fixture(scope="module")
def masked():
    return open_shipped("masked_vgg", "cpu")


def _zip(count: int, masks: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            image, label, mask = generate_sample("stack-shapes", "test", index, 224)
            picture = mask.astype("uint8") * 255 if masks else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            ok, png = cv2.imencode(".png", picture)
            # fixed timestamps: the same images give the same bytes, whenever they are zipped
            archive.writestr(zipfile.ZipInfo(f"photos/{CLASSES[label]}/{index}.png", (2026, 1, 1, 0, 0, 0)), png.tobytes())
        archive.writestr(zipfile.ZipInfo("photos/README.txt", (2026, 1, 1, 0, 0, 0)), "not an image")
    return buffer.getvalue()


def test_a_zip_is_audited_on_the_entrys_own_copy_and_its_first_image_is_the_audits(masked):
    files, images = audit_on_page(masked, ["gradcam"], zip_data=_zip(3), steps=2)
    assert len(images.items) == 3 and images.skipped == [("README.txt", "beside the class folders, so it has no class")]
    assert "camlab audit" in files["report.html"] and files["readouts.csv"].startswith("image,label")
    assert f"unseen region ({int(masked.unseen.sum())} pixels" in files["report.html"]  # the entry's own, not recomputed
    assert masked.slow.model is not None and masked.slow.model is not masked.loaded.model
    image = first_image(masked, _zip(3))
    assert image.shape == (3, 224, 224)
    assert first_image(masked, _zip(3)) is image  # each stroke on the canvas reruns the page: decoded once


def test_limits_are_checked_before_any_image_is_decoded(masked, monkeypatch):
    with pytest.raises(CamlabError, match="one forward per channel"):
        audit_on_page(masked, ["scorecam"])
    monkeypatch.setattr(page_audit, "MAX_ZIP_BYTES", 100)
    with pytest.raises(CamlabError, match="the page takes at most"):
        audit_on_page(masked, ["gradcam"], zip_data=b"x" * 101)
    monkeypatch.setattr(page_audit, "MAX_ZIP_BYTES", 2**30)
    monkeypatch.setattr(page_audit, "MAX_PAGE_IMAGES", 2)
    with pytest.raises(CamlabError, match="holds 3 readable images; the page audits at most 2"):
        audit_on_page(masked, ["gradcam"], zip_data=_zip(3), count=2)
    with pytest.raises(CamlabError, match="not a readable zip"):
        audit_on_page(masked, ["gradcam"], zip_data=b"not a zip", count=2)


def test_a_zip_of_masks_gives_the_audit_localisation_on_them(masked):
    files, images = audit_on_page(masked, ["gradcam"], zip_data=_zip(2), masks_zip=_zip(2, masks=True), steps=2)
    assert [item.mask for item in images.items] == [item.path for item in images.items]  # same folders and names
    assert "Localisation on the objects' masks" in files["report.html"] and "pointing_game" in files["readouts.csv"]
    with pytest.raises(CamlabError, match="go with a zip of your own images"):
        audit_on_page(masked, ["gradcam"], masks_zip=_zip(1, masks=True))
