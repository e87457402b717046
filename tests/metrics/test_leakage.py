"""Shares of a map inside a region, on hand-made maps."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from camlab.errors import CamlabError
from camlab.metrics.leakage import SHARES, l2_share, layer_region_shares, region_shares


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


def test_above_half_weighs_a_soft_region_in_both_counts():
    # the cases: a flat map on a region of half-covered cells used to give 2.0
    assert float(region_shares(torch.ones(1, 2, 2), torch.full((2, 2), 0.5))["above_half"]) == 1.0
    region = torch.tensor([[1.0, 0.25], [0.0, 0.0]])
    maps = torch.tensor([[[0.0, 0.9], [0.9, 0.9]]])
    assert float(region_shares(maps, region)["above_half"]) == pytest.approx(0.25 / 1.25)


@st.composite
def _maps_and_region(draw):
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    values = st.one_of(st.floats(0, 1, width=32), st.floats(0, 2.0**127, width=32), st.sampled_from([0.0, 0.5, 1.0]))
    maps = torch.tensor(draw(arrays(np.float32, (n, h, w), elements=values)))
    kind = draw(st.sampled_from(["bool", "soft", "per image"]))
    shape = (n, h, w) if kind == "per image" else (h, w)
    if kind == "bool":
        region = torch.tensor(draw(arrays(np.bool_, shape)))
    else:
        region = torch.tensor(draw(arrays(np.float32, shape, elements=st.floats(0, 1, width=32))))
    return maps, region


@given(case=_maps_and_region())
def test_every_share_lies_in_zero_one_for_any_maps_and_regions(case):
    maps, region = case
    for name, share in SHARES.items():
        value = share(maps, region)
        assert value.shape == (maps.shape[0],) and torch.isfinite(value).all(), name
        assert ((0 <= value) & (value <= 1)).all(), (name, value)
    for value in layer_region_shares(maps, region.float()).values():  # the area-downsampled region: soft cells
        assert torch.isfinite(value).all() and ((0 <= value) & (value <= 1 + 1e-6)).all()


def test_localisation_on_a_mask_with_known_answers():
    from camlab.metrics.leakage import localisation

    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0], maps[0, 0, 1], maps[0, 3, 3] = 3.0, 2.0, 1.0  # top two on the object, third off it
    maps[1, 3, 3] = 1.0  # the peak off the object
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, 0, :2] = True  # a two-pixel object
    found = localisation(maps, masks)
    assert found["pointing_game"].tolist() == [1.0, 0.0]
    assert found["relevance_mass"].tolist() == pytest.approx([5 / 6, 0.0])
    # of the top 2 pixels: both on the object; then the peak off it and one of 15 tied zeros, 2 of them on it
    assert found["relevance_rank"].tolist() == pytest.approx([1.0, (2 / 15) / 2])
    flipped = localisation(maps.flip(-1).flip(-2), masks.flip(-1).flip(-2))  # the same scene, pixels reordered
    assert flipped["relevance_rank"].tolist() == pytest.approx(found["relevance_rank"].tolist())
