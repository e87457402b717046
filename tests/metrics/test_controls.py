"""Control maps and fixed-coverage binarisation."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.metrics.controls import control_maps, matched_control, random_smooth, top_fraction


def test_controls_have_the_right_values_and_shapes():
    like = torch.rand(3, 20, 30)
    assert torch.equal(control_maps("zeros", like), torch.zeros(3, 20, 30))
    assert torch.equal(control_maps("ones", like), torch.ones(3, 20, 30))
    random = control_maps("random", like, seed=4)
    assert random.shape == (3, 20, 30) and float(random.min()) == 0 and float(random.max()) == pytest.approx(1)
    assert torch.equal(random, control_maps("random", like, seed=4))
    assert not torch.equal(random, control_maps("random", like, seed=5))
    with pytest.raises(CamlabError, match="unknown control 'noise'"):
        control_maps("noise", like)


def test_random_maps_are_smooth():
    maps = random_smooth(4, (56, 56))
    neighbour_step = (maps[:, 1:] - maps[:, :-1]).abs().mean()
    shuffled = maps.flatten(1)[:, torch.randperm(56 * 56)].view_as(maps)
    assert neighbour_step < 0.2 * (shuffled[:, 1:] - shuffled[:, :-1]).abs().mean()


def test_matched_control_keeps_the_values_and_moves_them():
    maps = torch.zeros(2, 16, 16)
    maps[:, :4, :4] = torch.linspace(0.1, 1, 16).view(4, 4)  # a compact blob in a corner
    matched = matched_control(maps, seed=1)
    assert torch.equal(matched.flatten(1).sort(1).values, maps.flatten(1).sort(1).values)  # same histogram
    assert not torch.equal(matched, maps)
    assert float(matched.mean()) == pytest.approx(float(maps.mean()))  # same coverage


def test_top_fraction_keeps_exactly_the_top_pixels():
    maps = torch.arange(100.0).view(1, 10, 10)
    binary = top_fraction(maps, 20)
    assert int(binary.sum()) == 20 and binary.flatten()[80:].all() and not binary.flatten()[:80].any()
    assert int(top_fraction(maps, 0.1).sum()) == 1  # at least one pixel
    assert int(top_fraction(torch.zeros(2, 4, 4), 50).sum()) == 16  # ties: exact area all the same
    for bad in (0, -5, 101, float("nan"), True, "10"):
        with pytest.raises(CamlabError, match="percentage in \\(0, 100\\]"):
            top_fraction(maps, bad)
