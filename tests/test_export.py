"""Downloads: raw maps, overlay PNG and the manifest round-trip."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import camlab
from camlab.export import manifest, maps_npz, overlay_png
from camlab.study.data import StackedDataset
from camlab.study.wallvgg import load_checkpoint
from camlab.walls import unseen_region
from tests.paths import MODELS


@pytest.fixture(scope="module")
def masked():
    return load_checkpoint(MODELS / "masked_vgg.pt")


@pytest.fixture(scope="module")
def sample():
    return StackedDataset("stack-shapes", "test")[5][0]


def test_exports_round_trip(masked, sample):
    result = camlab.explain(masked.model, sample[None], ["gradcam", "gradient"], masked.default_layer)
    arrays = np.load(io.BytesIO(maps_npz(result)))
    assert arrays["gradcam.raw"].shape == tuple(result["gradcam"].raw.shape[1:])
    assert np.allclose(arrays["gradient.display"], result["gradient"].display[0].numpy())
    assert arrays["logits"].shape == (8,)
    png = overlay_png(sample, result["gradcam"].display[0], 0.5, unseen_region(masked.model))
    assert Image.open(io.BytesIO(png)).size == (sample.shape[2], sample.shape[1])
    record = json.loads(manifest(model="masked_vgg", architecture="masked_vgg", layer=result.layer, target_class=2,
                                 class_name="triangle", methods=["gradcam"], metrics={"gradcam": {"ad": 1.5}},
                                 image="test #5", device="cpu", extra_versions={"streamlit": "x"}, steps=8))
    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["streamlit"] == "x"
    assert record["settings"] == {"steps": 8} and record["target_class"] == {"index": 2, "name": "triangle"}
