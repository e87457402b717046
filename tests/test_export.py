"""Downloads: raw maps, overlay PNG and the manifest round-trip."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import camlab
from camlab.export import manifest, maps_npz, model_identity, overlay_png, tensor_sha256
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
    width, height = Image.open(io.BytesIO(png)).size  # the map with its colour bar on the right
    assert height == sample.shape[1] and width > sample.shape[2]
    labelled = Image.open(io.BytesIO(overlay_png(sample, result["gradcam"].display[0], label="gradcam", top=0.7)))
    assert labelled.size[1] > sample.shape[1]  # the method's name above the picture
    record = json.loads(manifest(model="masked_vgg", architecture="masked_vgg", layer=result.layer, target_class=2,
                                 class_name="triangle", methods=["gradcam"], metrics={"gradcam": {"ad": 1.5}},
                                 image="test #5", device="cpu", extra_versions={"streamlit": "x"}, steps=8))
    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["streamlit"] == "x"
    assert record["settings"] == {"steps": 8} and record["target_class"] == {"index": 2, "name": "triangle"}


def test_a_model_is_identified_by_a_hash_of_its_weights(masked):
    first = model_identity(masked.model, masked.name, masked.architecture, masked.card)
    assert first == model_identity(masked.model, masked.name, masked.architecture, masked.card)
    other = load_checkpoint(MODELS / "baseline_vgg.pt")
    assert model_identity(other.model, other.name, other.architecture, other.card)["weights_sha256"] != \
        first["weights_sha256"]
    assert len(tensor_sha256(torch.zeros(3))) == 64 and tensor_sha256(torch.zeros(3)) != tensor_sha256(torch.ones(3))
