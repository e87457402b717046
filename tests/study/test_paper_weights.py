"""The authors' published VGG16 weights (MagamedT/cam-can-see-through-walls) load with their layer and wall.

The module tree is rebuilt here the way the authors' figure_code/heatmap.py builds it, independently of
camlab's WallVGG, so the test proves the two compute the same function from the same file."""

import pytest
import torch
import torchvision
from torch import nn

from camlab import CamlabError, explain
from camlab.models import IMAGENET_MEAN, IMAGENET_STD
from camlab.study.wallvgg import load_checkpoint
from camlab.walls import unseen_region


def _authors_vgg16(walled_rows: int) -> nn.Sequential:
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None)
    features = list(vgg.features.children())
    model = nn.Sequential(*features[:30], nn.Flatten(start_dim=1), vgg.classifier)  # the last max-pool removed
    model[28] = nn.Conv2d(512, 256, kernel_size=3, padding=1)
    model[-1][0] = nn.Linear(256 * 14 * 14, 4096)
    with torch.no_grad():
        rows = torch.ones(14, 14)
        rows[14 - walled_rows:] = 0
        model[-1][0].weight *= rows.repeat(256, 1, 1).reshape(1, -1)
    return model.eval()


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    authors = _authors_vgg16(9)
    path = tmp_path_factory.mktemp("paper") / "params_vgg16_masked.pt"
    torch.save(authors.state_dict(), path)
    return authors, load_checkpoint(path)


def test_the_authors_masked_weights_load_with_their_layer_wall_and_classes(masked):
    authors, loaded = masked
    assert loaded.architecture == "paper_masked_vgg16" and loaded.default_layer == "features.29"
    assert loaded.class_names[1] == "goldfish" and "top 5 of 14 feature rows" in loaded.card["weights"]
    images = torch.rand(2, 3, 224, 224)
    normalised = (images - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(loaded.model(images), authors(normalised), rtol=1e-4, atol=1e-5)
    result = explain(loaded.model, images, ["gradcam", "hirescam"], target_layer=loaded.default_layer)
    assert (result["hirescam"].raw[:, 5:] == 0).all() and (result["gradcam"].raw[:, 5:] != 0).any()


def test_the_computed_unseen_region_is_the_papers_bottom_54_rows(masked):
    region = unseen_region(masked[1].model, (3, 224, 224))
    rows = region.all(dim=1)
    assert rows[170:].all() and not rows[:170].any() and (region.any(dim=1) == rows).all()


def test_the_baseline_twin_is_unwalled_and_a_head_that_reads_nothing_is_refused(tmp_path):
    authors = _authors_vgg16(0)
    path = tmp_path / "params_vgg16_baseline.pt"
    torch.save(authors.state_dict(), path)
    loaded = load_checkpoint(path)
    assert loaded.architecture == "paper_baseline_vgg16" and "unwalled" in loaded.card["weights"]
    state = authors.state_dict()
    state["31.0.weight"].zero_()
    torch.save(state, path)
    with pytest.raises(CamlabError, match="reads no feature row"):
        load_checkpoint(path)


def test_the_audit_preprocesses_for_the_paper_model_as_the_authors_do(masked):
    from camlab.audit.model import preprocessing_for

    assert preprocessing_for(masked[1]).crop_fraction == pytest.approx(224 / 256)
