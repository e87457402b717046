"""The walled ViT (camlab.study.wallvit): its head cannot read the walled rows of patch tokens."""

import pytest
import torch

from camlab import CamlabError, explain
from camlab.study.train import initial_model, parse_args
from camlab.study.wallvit import WallViT, WallViTConfig, baseline_vit, masked_vit
from camlab.walls import analyse_unseen_region


def _walled() -> WallViT:
    torch.manual_seed(0)
    return masked_vit(width=0.125, depth=2).eval()


def test_the_logits_ignore_the_walled_tokens_while_cams_read_them():
    model = _walled()
    images = torch.rand(2, 3, 224, 224)
    noise = torch.randn(2, 196, model.config.dim) * 5
    walled_tokens = torch.arange(196) >= 5 * 14  # rows 5..13 of the 14x14 patch grid, row-major

    def scrambled(_module, _inputs, output):
        return output + noise * walled_tokens[None, :, None]  # any values on the walled tokens

    with torch.no_grad():
        before = model(images)
        handle = model.blocks[-1].register_forward_hook(scrambled)
        after = model(images)
        handle.remove()
    assert torch.equal(before, after)
    result = explain(model, images, ["gradcam", "hirescam", "layercam"], target_layer=model.default_layer)
    assert result["hirescam"].raw.shape == (2, 14, 14)
    assert (result["hirescam"].raw[:, 5:] == 0).all() and (result["layercam"].raw[:, 5:] == 0).all()
    assert (result["hirescam"].raw[:, :5] != 0).any()
    assert (result["gradcam"].raw[:, 5:] != 0).any()


def test_the_twin_reads_every_token_and_no_pixel_is_unseen():
    """Attention mixes every patch into every token: the wall holds on tokens, not on pixels."""
    walled = _walled()
    twin = WallViT(WallViTConfig(width=0.125, depth=2, masked_rows=0)).eval()
    twin.load_state_dict(walled.state_dict())
    images = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert not torch.allclose(walled(images), twin(images), atol=1e-4)
    twin_maps = explain(twin, images, ["hirescam"], target_layer=twin.default_layer)["hirescam"].raw
    assert (twin_maps[:, 5:] != 0).any()
    region = analyse_unseen_region(walled, (3, 224, 224))
    assert not region.pixels.any()


def test_camlab_train_builds_the_vits_and_checks_their_shape():
    masked = initial_model(parse_args(["--model", "masked_vit", "--masked-rows", "7"]))
    assert isinstance(masked, WallViT) and masked.config.masked_rows == 7 and masked.config.dim == 96
    assert initial_model(parse_args(["--model", "baseline_vit"])).config.masked_rows == 0
    with pytest.raises(CamlabError, match="layer norm"):
        initial_model(parse_args(["--model", "masked_vit", "--no-batch-norm"]))
    with pytest.raises(CamlabError, match="multiple of the patch size"):
        WallViTConfig(input_size=200)
    with pytest.raises(CamlabError, match="masked_rows"):
        WallViTConfig(masked_rows=14)
    assert WallViTConfig(width=0.1).dim == 64  # 76.8 rounded to whole 32-wide heads
    assert baseline_vit().config.masked_rows == 0
