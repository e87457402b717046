"""Pixels of equal value are ranked in seeded random orders, never by position, and metrics that
rank pixels average over the orders while evaluating each order-free image once."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.metrics.controls import order_dependent, tie_ranks, top_fraction
from camlab.metrics.faithfulness import fixed_coverage_metrics, insertion_deletion
from camlab.metrics.leakage import peak_inside
from tests.metrics.test_faithfulness import Counting
from tests.nets import TinyNet


def half_zero_maps(count: int = 3, size: int = 16) -> torch.Tensor:
    """Maps like CAM display maps: distinct values in the top-left, exact zeros elsewhere."""
    generator = torch.Generator().manual_seed(1)
    maps = torch.zeros(count, size, size)
    maps[:, : size // 2, : size // 2] = torch.rand(count, size // 2, size // 2, generator=generator) + 0.1
    return maps


def test_without_ties_every_order_is_the_descending_order():
    maps = torch.rand(3, 8, 8)
    expected = maps.flatten(1).argsort(dim=1, descending=True).argsort(dim=1)
    ranks = tie_ranks(maps, orders=5, seed=3)
    assert ranks.shape == (5, 3, 64) and ranks.dtype == torch.int32
    assert (ranks.long() == expected).all()


def test_ties_are_ordered_at_random_and_the_same_however_images_are_batched():
    maps = half_zero_maps(4)
    ranks = tie_ranks(maps, orders=3, seed=7)
    # Each image's orders depend on (seed, its index), not on the batch around it.
    alone = tie_ranks(maps[2:3], orders=3, seed=7, indices=torch.tensor([2]))
    assert torch.equal(alone[:, 0], ranks[:, 2])
    assert not torch.equal(ranks[0], ranks[1])  # the orders differ among the zeros ...
    top = maps.flatten(1) > 0
    assert (ranks[:, top] < 64).all()  # ... never above a larger value
    assert not torch.equal(tie_ranks(maps, 3, seed=8), ranks)
    # A constant map: the first half of each random order falls half in the top rows, half in the bottom.
    constant = tie_ranks(torch.zeros(64, 16, 16), orders=1)[0].view(64, 16, 16)
    first_half_on_top = (constant[:, :8] < 128).float().sum(dim=(1, 2)) / 128
    assert 0.45 < float(first_half_on_top.mean()) < 0.55
    with pytest.raises(CamlabError, match="tie orders must be a whole number"):
        tie_ranks(maps, orders=0)
    with pytest.raises(CamlabError, match="one image index per map"):
        tie_ranks(maps, indices=torch.arange(3))


def test_order_dependence_is_exactly_a_cut_through_a_run_of_ties():
    maps = torch.tensor([[[3.0, 2.0], [2.0, 0.0]]])
    assert order_dependent(maps, torch.tensor([0, 1, 2, 3, 4])).tolist() == [[False, False, True, False, False]]
    maps = half_zero_maps(2)
    counts = torch.arange(0, 257, 16)
    for image in range(2):
        for column, count in enumerate(counts.tolist()):
            sets = {frozenset(torch.nonzero(r < count).view(-1).tolist()) for r in tie_ranks(maps, 6)[:, image]}
            assert bool(order_dependent(maps, counts)[image, column]) == (len(sets) > 1), (image, count)


def test_insertion_deletion_is_the_mean_over_orders_and_reruns_only_order_dependent_steps():
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    maps, classes, steps = half_zero_maps(3), torch.tensor([0, 1, 2]), 8
    ranks = tie_ranks(maps, orders=4)
    counting = Counting(model)
    together = insertion_deletion(counting, images, maps, classes, steps=steps, ranks=ranks)
    inner = torch.linspace(0, 256, steps + 1).round()[1:-1]
    repeats = int(order_dependent(maps, inner).sum())
    assert repeats > 0
    assert counting.seen == 3 * (2 * (steps - 1) + 3) + 2 * 3 * repeats  # order 0 everywhere, 3 more where needed
    each = [insertion_deletion(model, images, maps, classes, steps=steps, ranks=ranks[k : k + 1]) for k in range(4)]
    for kind in ("insertion", "deletion"):
        per_order = torch.stack([e[f"{kind}_auc"] for e in each], dim=1)
        assert torch.allclose(together[f"{kind}_auc:orders"], per_order, atol=1e-6)
        assert torch.allclose(together[f"{kind}_auc"], per_order.mean(1), atol=1e-6)
        assert torch.allclose(together[f"{kind}_curve"], torch.stack([e[f"{kind}_curve"] for e in each]).mean(0),
                              atol=1e-6)
    assert per_order.std(1).max() > 0  # the tie order moves the answer: that is why it is averaged


def test_a_constant_map_scores_as_the_random_order_it_is_given():
    torch.manual_seed(0)
    model, images, classes = TinyNet().eval(), torch.rand(2, 3, 16, 16), torch.tensor([0, 3])
    constant = torch.zeros(2, 16, 16)
    ranks = tie_ranks(constant, orders=3, seed=5)
    found = insertion_deletion(model, images, constant, classes, steps=6, ranks=ranks)
    for k in range(3):  # the tie-free map whose values follow order k
        ordered = (1 - ranks[k].float() / 256).view(2, 16, 16)
        alone = insertion_deletion(model, images, ordered, classes, steps=6)
        assert torch.allclose(found["insertion_auc:orders"][:, k], alone["insertion_auc"], atol=1e-6)


def test_coverage_metrics_average_the_tie_orders_at_the_cut():
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    maps, classes = half_zero_maps(3), torch.tensor([0, 1, 2])
    ranks = tie_ranks(maps, orders=4)
    counting = Counting(model)
    found = fixed_coverage_metrics(counting, images, maps, classes, coverages=(10, 50), ranks=ranks)
    # 10% (26 pixels) lies inside the 64 distinct values: one image per map; 50% cuts the zeros: four.
    assert counting.seen == 3 + 3 + 3 * 4
    for coverage in (10, 50):
        per_order = torch.stack([fixed_coverage_metrics(model, images, maps, classes, coverages=(coverage,),
                                                        ranks=ranks[k : k + 1])[f"average_drop@{coverage}"]
                                 for k in range(4)], dim=1)
        assert torch.allclose(found[f"average_drop@{coverage}:orders"], per_order, atol=1e-5)
        assert torch.allclose(found[f"average_drop@{coverage}"], per_order.mean(1), atol=1e-5)
    assert top_fraction(maps, 50, ranks).shape == (4, 3, 16, 16)
    assert int(top_fraction(maps, 50, ranks[2:3]).sum()) == 3 * 128


def test_a_peak_shared_by_several_pixels_counts_as_the_share_of_them_inside():
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0] = maps[0, 3, 3] = maps[0, 3, 2] = 1.0  # three tied maxima, one in the top row
    maps[1, 3, 3] = 1.0  # one peak
    region = torch.zeros(4, 4)
    region[0] = 1
    assert torch.allclose(peak_inside(maps, region), torch.tensor([1 / 3, 0.0]))
    assert float(peak_inside(torch.zeros(1, 4, 4), region)[0]) == 0  # an all-zero map points nowhere
