"""The unseen region: structural analysis, confirmed by randomising the claimed pixels, or no claim."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from camlab.errors import CamlabError
from camlab.walls import FeatureWall, analyse_unread_cells, analyse_unseen_region, paper_wall, unseen_region


class HalfBlind(nn.Module):
    """A linear head that reads only the top half of a conv map; ``softmax`` ends it with nn.Softmax,
    ``functional`` pools with F.max_pool2d."""

    def __init__(self, softmax: bool = False, functional: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 8, 3)
        self.softmax, self.functional = softmax, functional
        with torch.no_grad():
            self.fc.weight.view(3, 4, 4, 8)[:, :, 2:] = 0  # bottom two of four pooled rows unread

    def forward(self, x):
        h = F.relu(self.conv(x))
        h = F.max_pool2d(h, 2) if self.functional else nn.functional.avg_pool2d(h, 2)
        out = self.fc(h.flatten(1))
        return out.softmax(dim=1) if self.softmax else out


def test_a_head_that_ignores_rows_leaves_the_pixels_below_unseen():
    region = analyse_unseen_region(HalfBlind(), (3, 8, 16))
    assert region.pixels[5:].all() and not region.pixels[:4].any()
    assert "bit-identical" in region.reason


def test_softmax_outputs_and_functional_max_pools_make_no_false_claims():
    """Softmax outputs sum to a constant and max-pool gradients reach one pixel per window: a naive
    gradient analysis flags pixels the output does use. These give the same region as the plain model."""
    plain = analyse_unseen_region(HalfBlind(), (3, 8, 16)).pixels
    for model in (HalfBlind(softmax=True), HalfBlind(functional=True)):
        assert torch.equal(analyse_unseen_region(model, (3, 8, 16)).pixels, plain)


class Sneaky(nn.Module):
    """Looks walled to the structure (a zero weight), but reads the bottom rows through an operation
    the positive copy cannot see: the sign of a difference."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 8, 2)
        with torch.no_grad():
            self.fc.weight.view(2, 3, 4, 8)[:, :, 2:] = 0

    def forward(self, x):
        leak = torch.sign(x[:, :, 3:] - 0.5).sum(dim=(1, 2, 3))
        return self.fc(x.flatten(1)) + leak.detach()[:, None]


def test_a_claim_the_evidence_refutes_is_withdrawn_with_the_reason():
    region = analyse_unseen_region(Sneaky(), (3, 4, 8))
    assert not region.pixels.any()
    assert "changed the output" in region.reason and "no region is claimed" in region.reason
    assert not unseen_region(Sneaky(), (3, 4, 8)).any()


def test_a_model_that_returns_no_logits_tensor_is_one_clear_error():
    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)

        def forward(self, x):
            out = self.conv(x).flatten(1)
            return out, out

    with pytest.raises(CamlabError, match="must be a classifier returning logits of shape"):
        unseen_region(Pair(), (3, 8, 8))


def test_the_cells_a_head_does_not_read_are_found_and_verified():
    cells = analyse_unread_cells(HalfBlind(), "conv", (3, 8, 16))
    assert cells.layer == "conv" and cells.cells.shape == (8, 16)
    assert cells.cells[4:].all() and not cells.cells[:4].any()
    assert "bit-identical" in cells.reason
    assert not analyse_unread_cells(HalfBlind(functional=True), "conv", (3, 8, 16)).cells[:4].any()


def test_a_feature_wall_on_a_vit_leaves_its_patch_tokens_unread_and_the_class_token_read():
    torch.manual_seed(0)
    vit = VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64).eval()
    nn.init.normal_(vit.heads.head.weight, std=0.02)  # torchvision starts it at 0: an output that reads nothing
    walled = FeatureWall(vit, "encoder.layers.encoder_layer_0", paper_wall(64))
    cells = analyse_unread_cells(walled, walled.layer, (3, 64, 64))
    assert cells.cells.shape == (4, 4) and torch.equal(cells.cells, walled.cells.cpu())
    assert not analyse_unread_cells(vit, "encoder.layers.encoder_layer_0", (3, 64, 64)).cells.any()


def test_unread_cells_the_evidence_refutes_or_cannot_test_are_not_claimed():
    class SneakyCells(nn.Module):
        """A zero weight on the bottom rows, and their sign read where the positive copy cannot see it."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)
            self.fc = nn.Linear(2 * 4 * 8, 2)
            with torch.no_grad():
                self.fc.weight.view(2, 2, 4, 8)[:, :, 2:] = 0

        def forward(self, x):
            h = self.conv(x)
            return self.fc(h.flatten(1)) + torch.sign(h[:, :, 2:]).sum(dim=(1, 2, 3)).detach()[:, None]

    refuted = analyse_unread_cells(SneakyCells(), "conv", (3, 4, 8))
    assert not refuted.cells.any() and "changed the output" in refuted.reason
    custom = analyse_unread_cells(HalfBlind(), "conv", (3, 8, 16), reshape=lambda output: output)
    assert not custom.cells.any() and "not verified" in custom.reason
    with pytest.raises(CamlabError, match="must be a classifier"):
        analyse_unread_cells(nn.Sequential(nn.Conv2d(3, 2, 1)), "0", (3, 4, 4))


class MaskedAttention(nn.Module):
    """Four tokens (a 2x2 grid) in fused attention; the head reads token 0, which may not attend to token 3.
    The weights are large, so the positive copy's softmax would saturate to exact zeros."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(3, 8)
        self.position = nn.Parameter(torch.randn(4, 8) * 100)  # tokens differ, even on the copy's all-ones input
        self.head = nn.Linear(8, 2)
        self.register_buffer("mask", ~torch.eye(4, dtype=torch.bool)[3].expand(4, 4).clone())

    def forward(self, x):
        tokens = self.embed(x.flatten(2).transpose(1, 2)) + self.position  # (N, 4, 8) from a 2x2 image
        mixed = F.scaled_dot_product_attention(tokens, tokens, tokens, attn_mask=self.mask)
        return self.head(mixed[:, 0])


def test_fused_attention_is_read_with_its_masks_and_without_saturating():
    cells = analyse_unread_cells(MaskedAttention(), "embed", (3, 2, 2))
    assert cells.cells.tolist() == [[False, False], [False, True]], cells.reason
    assert "bit-identical" in cells.reason
