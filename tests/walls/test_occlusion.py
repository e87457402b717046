"""Occluded models: the output cannot depend on the pixels behind the wall."""
import pytest
import torch

import camlab
from camlab.walls import OCCLUSION_FILLS, BlindModel, wall_mask
from tests.nets import TinyNet


@pytest.mark.parametrize("fill", OCCLUSION_FILLS)
def test_blinded_model_output_is_bit_identical_when_walled_pixels_change(fill):
    wall = wall_mask([{"type": "rect", "x0": 2, "y0": 2, "x1": 9, "y1": 12}], 16, 16)
    blind = BlindModel(TinyNet().eval(), wall, fill=fill)
    torch.manual_seed(0)
    images = torch.rand(2, 3, 16, 16)
    changed = images.clone()
    changed[:, :, wall] = torch.rand_like(changed[:, :, wall]) * 100
    visible = images.clone()
    visible[:, :, 14:, 14:] += 1
    with torch.no_grad():
        assert torch.equal(blind(images), blind(changed))
        assert not torch.equal(blind(images), blind(visible))


def test_blinded_model_works_with_the_engine():
    wall = wall_mask([{"type": "rect", "x0": 0, "y0": 0, "x1": 15, "y1": 7}], 16, 16)
    blind = BlindModel(TinyNet().eval(), wall)
    result = camlab.explain(blind, torch.rand(2, 3, 16, 16), ["hirescam", "gradient"], target_layer="model.relu2")
    assert (result["gradient"].raw[:, :, wall] == 0).all()  # no pixel gradient through the wall
