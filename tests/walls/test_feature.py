"""Feature walls: the paper's wall on any CNN — the output ignores the walled cells, element-wise CAMs are 0 there."""
import pytest
import torch
import torchvision
from torch import nn

import camlab
from camlab.errors import CamlabError
from camlab.walls import FeatureWall, FeatureWallAnalyser, analyse_unseen_region, snap_to_cells
from tests.nets import SkipNet, TinyNet


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10).eval()


def _bottom(rows: int, size: int = 64) -> torch.Tensor:
    wall = torch.zeros(size, size, dtype=torch.bool)
    wall[size - rows :] = True
    return wall


def test_snapping_walls_cells_at_least_half_covered():
    wall = torch.zeros(16, 16, dtype=torch.bool)
    wall[:, :6] = True  # columns 0-5 of 16: cell 0 (0-3) fully, cell 1 (4-7) half
    cells = snap_to_cells(wall, (4, 4))
    assert cells[:, :2].all() and not cells[:, 2:].any()
    wall[:, 5] = False  # now cell 1 is a quarter covered
    assert not snap_to_cells(wall, (4, 4))[:, 1].any()


@pytest.mark.parametrize("layer", ["relu2", "conv2", "relu1"])
def test_output_ignores_the_walled_cells_of_a_global_pooling_model(layer):
    model = TinyNet().eval()
    walled = FeatureWall(model, layer, _bottom(8, 16))
    assert walled.cells.shape == (16, 16) and walled.cells[8:].all() and not walled.cells[:8].any()
    captured = {}
    walled.layer.register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        reference = walled(x)
        noise = torch.randn_like(captured["out"]) * 100
        handle = walled.layer.register_forward_hook(lambda m, i, o: o + noise * walled.cells)
        assert torch.equal(walled(x), reference)  # any activation on walled cells: same output
        handle.remove()
    assert not torch.equal(model(x), reference)  # the original model still reads them


def test_element_wise_cams_are_zero_on_walled_cells_and_grad_cam_is_not(resnet):
    walled = FeatureWall(resnet, "layer3", _bottom(40))
    x = torch.rand(3, 3, 64, 64)
    result = camlab.explain(walled, x, ["gradcam", "hirescam", "layercam", "gradcamelementwise", "eigengradcam"],
                            target_layer=walled.layer)
    cells = walled.cells
    assert result.layer == "model.layer3.layer"
    for method in ("hirescam", "layercam", "gradcamelementwise"):
        assert (result[method].raw[:, cells] == 0).all(), method
    assert (result["gradcam"].raw[:, cells] != 0).any()  # channel weights still paint the activations
    # grad x act is zero there too, but centring before the principal component moves it off zero
    assert (result["eigengradcam"].raw[:, cells] != 0).any()
    # aug_smooth averages signed raw maps of flipped and rescaled images, so the zero survives it
    smoothed = camlab.explain(walled, x, ["hirescam", "gradcam"], target_layer=walled.layer,
                              options={m: {"aug_smooth": True} for m in ("hirescam", "gradcam")})
    assert (smoothed["hirescam"].raw[:, cells] == 0).all() and (smoothed["gradcam"].raw[:, cells] != 0).any()
    assert not torch.equal(smoothed["hirescam"].raw, result["hirescam"].raw)


def test_the_model_itself_is_untouched(resnet):
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    layer4 = resnet.layer4
    walled = FeatureWall(resnet, "layer4", _bottom(40))
    assert resnet.layer4 is layer4 and walled.layer is layer4
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(walled(x), resnet(x))
    assert all(torch.equal(v, before[k]) for k, v in resnet.state_dict().items())
    assert all(not m._forward_hooks for m in resnet.modules())


def test_the_pixel_region_behind_a_feature_wall_is_usually_empty(resnet):
    """Receptive fields cross the wall: walling 5 of 8 rows of layer3 leaves no pixel unread."""
    walled = FeatureWall(resnet, "layer3", _bottom(40))
    region = analyse_unseen_region(walled, (3, 64, 64))
    assert not region.pixels.any() and "every pixel reaches the output" in region.reason


def test_flatten_heads_are_walled_too():
    head = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 3)).eval()
    walled = FeatureWall(head, "1", _bottom(8, 16))
    region = analyse_unseen_region(walled, (3, 16, 16))
    # one 3x3 conv before the wall: rows 9-15 reach only walled cells
    assert region.pixels[9:].all() and not region.pixels[:8].any()


def test_bad_feature_walls_are_refused_clearly(resnet):
    with pytest.raises(CamlabError, match="covers no cell of 'layer4'"):
        FeatureWall(resnet, "layer4", _bottom(2))
    with pytest.raises(CamlabError, match="covers every cell"):
        FeatureWall(resnet, "layer4", _bottom(64))
    with pytest.raises(CamlabError, match="not a spatial"):
        FeatureWall(resnet, "fc", _bottom(32))
    with pytest.raises(CamlabError, match="no layer named 'layer5'"):
        FeatureWall(resnet, "layer5", _bottom(32))
    with pytest.raises(CamlabError, match=r"\(H, W\) pixel mask"):
        FeatureWall(resnet, "layer4", torch.ones(1, 64, 64, dtype=torch.bool))


def _flatten_head() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 16 * 16, 3)).eval()


@pytest.mark.parametrize("layer", ["1", "3"])
def test_the_analyser_finds_what_the_whole_analysis_finds_for_every_wall(layer):
    """Its one backward pass through the layers before the wall gives exactly the region, and the
    reason, of analysing each walled model from scratch — for walls of every shape and size."""
    model = _flatten_head()
    analyser = FeatureWallAnalyser(model, layer, (3, 16, 16))
    assert analyser.is_cut
    generator = torch.Generator().manual_seed(0)
    claims = 0
    for rows in range(1, 16):
        wall = torch.zeros(16, 16, dtype=torch.bool)
        wall[16 - rows :] = True
        scattered = torch.rand(16, 16, generator=generator) < rows / 16
        for pixels in (wall, scattered):
            if not snap_to_cells(pixels, (16, 16)).any() or snap_to_cells(pixels, (16, 16)).all():
                continue
            walled = FeatureWall(model, layer, pixels)
            fast, whole = analyser.analyse(walled), analyse_unseen_region(walled, (3, 16, 16))
            assert torch.equal(fast.pixels, whole.pixels) and fast.reason == whole.reason
            claims += bool(fast.pixels.any())
    assert claims >= 10  # the comparison covered real claims, not only empty regions


class _TopBypass(nn.Module):
    """Two convolutions and a flatten head, and a second head reading only the top half of the first
    convolution's map: paths bypass relu2, but only through the top rows."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.relu1 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
        self.head, self.top = nn.Linear(4 * 16 * 16, 3), nn.Linear(4 * 4 * 16, 3)

    def forward(self, x):
        h = self.relu1(self.conv1(x))
        return self.head(torch.flatten(self.relu2(self.conv2(h)), 1)) + self.top(torch.flatten(h[:, :, :4], 1))


def test_the_analyser_on_a_bypassed_layer_finds_what_the_whole_analysis_finds(resnet):
    """A skip connection around the walled layer: no cut, so each wall is one pass of the positive copy
    made once, with the wall multiplied in — the same regions and reasons as analysing each walled model."""
    for model in (SkipNet().eval(), _TopBypass().eval()):
        skip = FeatureWallAnalyser(model, "relu2", (3, 16, 16))
        assert not skip.is_cut and "bypass 'relu2'" in skip.reason
        claims = 0
        for rows in range(1, 16):
            walled = FeatureWall(model, "relu2", _bottom(rows, 16))
            fast, whole = skip.analyse(walled), analyse_unseen_region(walled, (3, 16, 16))
            assert torch.equal(fast.pixels, whole.pixels) and fast.reason == whole.reason
            claims += bool(fast.pixels.any())
        assert claims == (0 if isinstance(model, SkipNet) else 13)  # the top-half bypass leaves bottom rows unseen
    vit = _small_vit()
    tokens = FeatureWallAnalyser(vit, "encoder.layers.encoder_layer_2.ln_1", (3, 32, 32))
    for rows in (8, 16, 24):
        walled = FeatureWall(vit, "encoder.layers.encoder_layer_2.ln_1", _bottom(rows, 32))
        fast, whole = tokens.analyse(walled), analyse_unseen_region(walled, (3, 32, 32))
        assert torch.equal(fast.pixels, whole.pixels) and fast.reason == whole.reason
    block = FeatureWallAnalyser(resnet, "layer3.0.conv1", (3, 64, 64))  # the block's shortcut bypasses conv1
    assert not block.is_cut
    assert FeatureWallAnalyser(resnet, "layer3", (3, 64, 64)).is_cut


def test_the_analyser_refuses_walls_on_another_layer():
    model = _flatten_head()
    with pytest.raises(CamlabError, match="feature walls on '1'"):
        FeatureWallAnalyser(model, "1", (3, 16, 16)).analyse(FeatureWall(model, "3", _bottom(8, 16)))


def _batch_norm_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                        nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16 * 16, 3))
    with torch.no_grad():  # running statistics a batch of random images would visibly move
        for norm in (net[1], net[4]):
            norm.running_mean.fill_(0.3)
            norm.running_var.fill_(2.0)
    return net.eval()


def test_analysing_a_wall_leaves_the_shared_model_in_eval_mode_with_its_statistics():
    """A FeatureWall shares the model's modules; analysing it must not switch them to train mode
    (batch statistics, running means overwritten by the next forward) — the app's models are shared."""
    model = _batch_norm_net()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
    walled = FeatureWall(model, "3", _bottom(8, 16))
    assert not walled.training
    analyse_unseen_region(walled, (3, 16, 16))
    FeatureWallAnalyser(model, "3", (3, 16, 16)).analyse(walled)
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        assert torch.equal(model(x), expected)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_each_module_gets_back_its_own_mode():
    from camlab.layers import layer_output_shape
    from camlab.metrics.faithfulness import probabilities

    model = _batch_norm_net()
    model[4].train()  # a deliberately mixed model: only one norm in train mode
    layer_output_shape(model, model[3], (3, 16, 16))
    probabilities(model, torch.rand(2, 3, 16, 16), torch.tensor([0, 1]))
    assert [m.training for m in model.modules()] == [m is model[4] for m in model.modules()]


def _small_vit() -> nn.Module:
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=32,
                                               mlp_dim=64, num_classes=10).eval()
    nn.init.normal_(vit.heads.head.weight)  # torchvision starts the head at zero: every score would be 0
    return vit


def _small_swin() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                                              window_size=[4, 4], num_classes=10).eval()


TOKEN_WALLS = [  # (model, layer, reshape): a ViT's patch tokens before the last attention, Swin's last grid
    (_small_vit, "encoder.layers.encoder_layer_2.ln_1", None),
    (_small_swin, "norm", "nhwc"),
]


@pytest.mark.parametrize(("build", "layer", "reshape"), TOKEN_WALLS)
def test_token_and_channels_last_walls_hide_their_cells_from_the_output(build, layer, reshape):
    model = build()
    walled = FeatureWall(model, layer, _bottom(16, 32), reshape=reshape)
    assert walled.cells.shape == (4, 4) and walled.cells[2:].all() and not walled.cells[:2].any()
    if reshape is None:  # tokens: the class token is kept, the 8 patch tokens of the bottom rows walled
        assert walled.keep.shape == (1, 17, 1) and walled.keep[0, 0, 0] == 1 and walled.keep.sum() == 9
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        reference = walled(x)
        handle = walled.layer.register_forward_hook(lambda m, i, o: o + 100 * torch.randn_like(o) * (1 - walled.keep))
        assert torch.equal(walled(x), reference)  # any values on the walled tokens or cells: the same output
        handle.remove()
    assert not torch.equal(model(x), reference)
    result = camlab.explain(walled, x, ["gradcam", "hirescam", "layercam"], target_layer=walled.layer,
                            reshape=reshape)
    assert result["gradcam"].raw.shape == (2, 4, 4)
    for method in ("hirescam", "layercam"):
        assert (result[method].raw[:, walled.cells] == 0).all(), method
    assert (result["gradcam"].raw[:, walled.cells] != 0).any()


def test_a_vit_wall_leaves_no_pixel_unseen_and_says_why():
    """The residual stream and the earlier blocks' attention carry every patch past the wall."""
    walled = FeatureWall(_small_vit(), "encoder.layers.encoder_layer_2.ln_1", _bottom(16, 32))
    region = analyse_unseen_region(walled, (3, 32, 32))
    assert not region.pixels.any() and region.reason


def test_a_wall_needs_a_layout_it_can_address():
    model = _small_vit()
    with pytest.raises(CamlabError, match="reshape function"):
        FeatureWall(model, "encoder.layers.encoder_layer_2.ln_1", _bottom(16, 32),
                    reshape=lambda out: out[:, 1:].transpose(1, 2).reshape(-1, 32, 4, 4))
    with pytest.raises(CamlabError, match="no cell"):
        FeatureWall(model, "encoder.layers.encoder_layer_2.ln_1", _bottom(2, 32))
