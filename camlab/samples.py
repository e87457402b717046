"""Sample photographs: the public-domain and CC0 pictures scikit-image ships inside its wheel, so
they need no download. Each comes with where it is from, as scikit-image documents it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .errors import CamlabError
from .images import prepare_picture


@dataclass(frozen=True)
class Photograph:
    """A sample photograph: the ``skimage.data`` function that loads it and its source."""

    name: str
    loader: str
    source: str


PHOTOGRAPHS = {p.name: p for p in (
    Photograph("astronaut", "astronaut", "Eileen Collins, NASA; public domain (skimage.data.astronaut)"),
    Photograph("cat", "chelsea", "Chelsea the cat, by Stefan van der Walt; CC0 (skimage.data.chelsea)"),
    Photograph("coffee", "coffee", "a coffee cup, by Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0 "
                                   "(skimage.data.coffee)"),
    Photograph("rocket", "rocket", "DSCOVR launch on Falcon 9, SpaceX; public domain (skimage.data.rocket)"),
    Photograph("motorcycle", "stereo_motorcycle", "a motorcycle, Middlebury stereo dataset 2014, left view "
                                                  "(skimage.data.stereo_motorcycle)"),
    Photograph("camera", "camera", "a cameraman, by Lav Varshney; CC0; grey (skimage.data.camera)"),
    Photograph("coins", "coins", "Greek coins from Pompeii, Brooklyn Museum; grey (skimage.data.coins)"),
    Photograph("deep field", "hubble_deep_field", "Hubble eXtreme Deep Field, NASA; public domain "
                                                  "(skimage.data.hubble_deep_field)"),
)}


def photograph(name: str, size: int = 224) -> tuple[torch.Tensor, str]:
    """The named sample photograph as (3, size, size) in [0, 1], with a note saying what it is."""
    if name not in PHOTOGRAPHS:
        raise CamlabError(f"unknown sample photograph {name!r}; choose one of {', '.join(PHOTOGRAPHS)}")
    try:
        import skimage.data
    except ImportError as exc:  # the app's extra ships it; the library alone does not need it
        raise CamlabError("sample photographs come from scikit-image: pip install 'camlab[app]'") from exc

    entry = PHOTOGRAPHS[name]
    array = getattr(skimage.data, entry.loader)()
    array = array[0] if isinstance(array, tuple) else array  # the stereo pair's left view
    image, note = prepare_picture(Image.fromarray(np.ascontiguousarray(array)), size)
    return image, f"{entry.source}; {note}"
