"""The unseen region: structural analysis, confirmed by randomising the claimed pixels, or no claim."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from camlab.errors import CamlabError
from camlab.walls import analyse_unseen_region, unseen_region


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
