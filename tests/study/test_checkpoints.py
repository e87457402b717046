"""camlab checkpoints of every walled family: saved and loaded back with the same config, layer and logits."""

import pytest
import torch

from camlab.study.wallvgg import ARCHITECTURES, FAMILIES, load_checkpoint, save_checkpoint

SMALL = {"vgg": {"width": 1 / 16, "batch_norm": True}, "resnet": {"width": 0.25}, "vit": {"width": 0.125, "depth": 2}}
LAYERS = {"vgg": "features.42", "resnet": "layer4", "vit": "blocks.1"}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_a_walled_checkpoint_round_trips(tmp_path, architecture):
    family = architecture.split("_")[1]
    torch.manual_seed(0)
    model = ARCHITECTURES[architecture](**SMALL[family]).eval()
    path = save_checkpoint(tmp_path / f"{architecture}.pt", model, architecture, [f"c{i}" for i in range(8)])
    loaded = load_checkpoint(path)
    assert isinstance(loaded.model, FAMILIES[architecture][1]) and loaded.architecture == architecture
    assert loaded.default_layer == LAYERS[family] and loaded.model.config == model.config
    assert (loaded.model.config.masked_rows == 0) == architecture.startswith("baseline_")
    images = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), model(images))
