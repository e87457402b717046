"""The sample photographs: scikit-image's real pictures, and a clear message when the app's extra is absent."""
import sys

import pytest

from camlab.errors import CamlabError
from camlab.samples import PHOTOGRAPHS, photograph


def test_a_photograph_is_a_square_image_in_the_unit_range():
    image, note = photograph(next(iter(PHOTOGRAPHS)), size=64)
    assert image.shape == (3, 64, 64) and 0 <= float(image.min()) and float(image.max()) <= 1 and note


def test_without_scikit_image_the_library_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.data", None)  # None in sys.modules makes the import fail
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(CamlabError, match=r"camlab\[app\]"):
        photograph(next(iter(PHOTOGRAPHS)))
