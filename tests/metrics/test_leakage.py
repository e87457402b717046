"""Shares of a map inside a region, on hand-made maps."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.metrics.leakage import l2_share, layer_region_shares, region_shares


def test_leakage_metrics_on_hand_made_maps():
    wall = torch.zeros(8, 8, dtype=torch.bool)
    wall[4:] = True
    inside = torch.zeros(1, 8, 8)
    inside[0, 5, 5] = 1
    outside = torch.zeros(1, 8, 8)
    outside[0, 1, 1] = 1
    half = torch.ones(1, 8, 8)
    assert {k: float(v) for k, v in region_shares(inside, wall).items()} == {
        "l2": 1.0, "mass": 1.0, "peak": 1.0, "above_half": 1 / 32}
    assert all(float(v) == 0 for v in region_shares(outside, wall).values())
    assert float(l2_share(half, wall)) == pytest.approx(0.5 ** 0.5)
    zero = region_shares(torch.zeros(1, 8, 8), wall)
    assert all(torch.isfinite(v).all() and float(v) == 0 for v in zero.values())
    with pytest.raises(CamlabError, match="the region is"):
        l2_share(half, torch.zeros(4, 4))
    raw = torch.zeros(1, 2, 2)
    raw[0, 1, 0] = 3
    assert float(layer_region_shares(raw, wall)["mass"]) == 1.0
