"""Walls at initialisation on real architectures (camlab.study.at_init), on small inputs."""

import math

import pytest
import torch

from camlab.study.at_init import (
    ELEMENTWISE_METHODS,
    MATCHED,
    RANDOM_CAM_ROW,
    leakage_at_init,
    sample_photographs,
    to_markdown,
    walled_at_init,
)
from camlab.study.table1 import main


@pytest.fixture(scope="module")
def table():
    return leakage_at_init(["resnet18", "swin_t"], seeds=2, images=sample_photographs(64)[:3])


def test_elementwise_methods_are_exactly_zero_on_walled_cells_of_every_architecture(table):
    for arch, column in table.items():
        for method in ELEMENTWISE_METHODS:
            assert column["inside"][method] == 0 and column["rows"][method] == (0.0, 0.0), (arch, method)
        assert column["rows"]["gradcam"][0] > 0.1 and column["inside"]["gradcam"] > 0, arch


def test_controls_score_as_their_definition_says(table):
    for column in table.values():
        rows = column["rows"]
        assert rows["control: all-zero"] == (0.0, 0.0)
        assert rows["control: all-ones"][0] == pytest.approx(math.sqrt(column["walled"]), abs=1e-6)
        assert 0 < rows["control: random"][0] < 1 and 0 < rows[RANDOM_CAM_ROW][0] < 1
        # HiRes-CAM's own values at random places do paint the wall: it is dark there by where it looks
        assert rows["hirescam" + MATCHED][0] > 0.1 and rows["gradcam" + MATCHED][0] > 0.1


def test_the_paper_wall_snaps_to_the_bottom_row_of_a_two_by_two_grid(table):
    for column in table.values():
        assert column["grid"] == (2, 2) and column["walled"] == 0.5
    markdown = to_markdown(table)
    assert "| walled cells | 2×2, 50% | 2×2, 50% |" in markdown and "| control: Random-CAM |" in markdown


def test_seeds_give_different_networks_and_the_same_seed_the_same_one():
    first, again, other = walled_at_init("resnet18", 0, 64), walled_at_init("resnet18", 0, 64), walled_at_init("resnet18", 1, 64)
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(first(image), again(image)) and not torch.allclose(first(image), other(image))


def test_a_random_vit_has_a_random_head_and_a_token_wall(capsys, tmp_path):
    out = tmp_path / "at_init.md"
    main(["--at-init", "vit_b_16", "--seeds", "1", "--out", str(out)])
    text = out.read_text()
    assert "| vit_b_16 |" in text and "14×14, 64%" in text and "on a walled cell: vit_b_16 0" in text
    gradcam = next(line for line in text.splitlines() if line.startswith("| gradcam |"))
    assert not gradcam.startswith("| gradcam | 0.000 ± 0.000")  # a zero head would give all-zero maps
