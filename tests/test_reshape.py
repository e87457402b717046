"""Token and channels-last layers: vision transformers explained like CNNs."""
import pytest
import torch
import torchvision
from torchvision.models.swin_transformer import SwinTransformer
from torchvision.models.vision_transformer import VisionTransformer

import camlab
from camlab.errors import CamlabError
from camlab.layers import spatial_layers
from camlab.reshape import layout_for

CAMS = [m.name for m in camlab.list_methods() if not m.pixel_space]


@pytest.fixture(scope="module")
def small_vit():
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                              num_classes=5).eval()
    torch.nn.init.normal_(model.heads.head.weight)  # torchvision starts the head at 0: every logit 0
    return model


@pytest.fixture(scope="module")
def small_swin():
    torch.manual_seed(0)
    return SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=[2, 2],
                           num_classes=5).eval()


def test_token_layouts_drop_the_class_token_and_round_trip():
    tokens = torch.randn(2, 1 + 16, 8)
    layout = layout_for(tokens)
    assert (layout.kind, layout.skip, layout.side) == ("tokens", 1, 4)
    maps = layout.to_map(tokens)
    assert maps.shape == (2, 8, 4, 4) and torch.equal(maps[:, :, 0, 1], tokens[:, 2])
    assert torch.equal(layout.to_output(maps, tokens), tokens)
    assert layout_for(torch.randn(2, 9, 8)).skip == 0  # no class token
    nhwc = torch.randn(2, 3, 3, 8)
    assert torch.equal(layout_for(nhwc, "nhwc").to_output(layout_for(nhwc, "nhwc").to_map(nhwc), nhwc), nhwc)


def test_bad_layouts_are_named_clearly():
    with pytest.raises(CamlabError, match="12 tokens .* not a square grid"):
        layout_for(torch.randn(2, 12, 8))
    with pytest.raises(CamlabError, match="unknown reshape 'ncwh'"):
        layout_for(torch.randn(2, 3, 3, 8), "ncwh")
    with pytest.raises(CamlabError, match="must return an \\(N, C, h, w\\) map"):
        layout_for(torch.randn(2, 9, 8), lambda t: t.flatten(1)).to_map(torch.randn(2, 9, 8))


@pytest.mark.parametrize("method", [m for m in CAMS if m != "cam"])
def test_every_cam_runs_on_a_vision_transformer(small_vit, method):
    """RefineCAM's default looks for finer grids, which a ViT has not: it is given another block's layer."""
    x = torch.rand(2, 3, 32, 32)
    options = {"refinecam": {"layers": "encoder.layers.encoder_layer_0.ln_1"}} if method == "refinecam" else None
    result = camlab.explain(small_vit, x, [method], target_layer="encoder.layers.encoder_layer_1.ln_1",
                            options=options)
    assert result[method].raw.shape == (2, 4, 4) and torch.isfinite(result[method].raw).all()
    assert result[method].display.shape == (2, 32, 32)


def test_cam_refuses_a_vision_transformer_whose_head_is_not_one_pooled_linear_layer(small_vit):
    with pytest.raises(CamlabError, match="one linear layer"):
        camlab.explain(small_vit, torch.rand(2, 3, 32, 32), ["cam"], target_layer="encoder.layers.encoder_layer_1.ln_1")


@pytest.mark.parametrize("method", ["gradcam", "hirescam", "scorecam", "ablationcam", "eigencam"])
def test_swin_layers_read_channels_last(small_swin, method):
    x = torch.rand(2, 3, 32, 32)
    result = camlab.explain(small_swin, x, [method], target_layer="norm", reshape="nhwc")
    assert result[method].raw.shape == (2, 4, 4) and torch.isfinite(result[method].raw).all()


def test_token_layers_are_listed_with_their_grid(small_vit):
    layers = dict(spatial_layers(small_vit, torch.rand(1, 3, 32, 32)))
    assert layers["encoder.layers.encoder_layer_1.ln_1"] == (16, 4, 4)
    assert "heads" not in layers


def test_a_custom_reshape_works_but_cannot_ablate(small_vit):
    def centre(tokens):
        return tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, 4, 4)

    x = torch.rand(1, 3, 32, 32)
    custom = camlab.explain(small_vit, x, ["gradcam"], "encoder.layers.encoder_layer_1.ln_1", reshape=centre)
    automatic = camlab.explain(small_vit, x, ["gradcam"], "encoder.layers.encoder_layer_1.ln_1")
    assert torch.allclose(custom["gradcam"].raw, automatic["gradcam"].raw)
    with pytest.raises(CamlabError, match="custom reshape function cannot"):
        camlab.explain(small_vit, x, ["ablationcam"], "encoder.layers.encoder_layer_1.ln_1", reshape=centre)


def test_vit_b_16_agrees_with_grad_cams_reshape_transform_recipe():
    from pytorch_grad_cam import GradCAM

    torch.manual_seed(0)
    model = torchvision.models.vit_b_16(weights=None).eval()
    x = torch.rand(2, 3, 224, 224)

    def reshape_transform(tensor, height=14, width=14):  # pytorch-grad-cam's documented ViT recipe
        result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    layer = model.encoder.layers.encoder_layer_11.ln_1
    with GradCAM(model=model, target_layers=[layer], reshape_transform=reshape_transform) as cam:
        reference = torch.from_numpy(cam(x, targets=None))
    ours = camlab.explain(model, x, ["gradcam"], target_layer=layer)["gradcam"].display
    assert (ours - reference).abs().max() < 1e-4


def test_an_undefined_map_is_an_error_not_nan():
    """Ablation-CAM divides by the class score; torchvision's fresh ViT head gives exactly 0 everywhere."""
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8,
                              num_classes=3).eval()
    with pytest.raises(CamlabError, match="ablationcam gave NaN or infinite values"):
        camlab.explain(model, torch.rand(1, 3, 32, 32), ["ablationcam"], "encoder.layers.encoder_layer_0.ln_1")
