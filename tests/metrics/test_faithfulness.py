"""Drop/Increase/Gain and RISE insertion/deletion on models whose evidence is known."""
import pytest
import torch

from camlab.errors import CamlabError
from camlab.metrics.faithfulness import REMOVAL_FILLS, confidence_metrics, fill_image, fixed_coverage_metrics, insertion_deletion
from tests.nets import QuadrantModel, TinyNet


def test_constant_map_of_ones_gives_zero_drop_increase_and_gain():
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(4, 3, 16, 16)
    classes = model(images).argmax(1)
    scores = confidence_metrics(model, images, torch.ones(4, 16, 16), classes)
    for key in ("average_drop", "increase_in_confidence", "average_gain"):
        assert float(scores[key].abs().max()) == 0, key
    dark = confidence_metrics(model, images, torch.zeros(4, 16, 16), classes, space="normalized")
    assert torch.isfinite(dark["average_drop"]).all()
    with pytest.raises(CamlabError, match="unknown masking space"):
        confidence_metrics(model, images, torch.ones(4, 16, 16), classes, space="logit")


def test_insertion_and_deletion_reward_the_map_that_points_at_the_evidence():
    checkerboard = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float()
    images = checkerboard.expand(2, 3, 16, 16).clone()
    classes = torch.zeros(2, dtype=torch.long)
    right = torch.zeros(2, 16, 16)
    right[:, :8, :8] = 1
    wrong = 1 - right
    good = insertion_deletion(QuadrantModel(), images, right, classes, steps=8)
    bad = insertion_deletion(QuadrantModel(), images, wrong, classes, steps=8)
    assert (good["deletion_auc"] < bad["deletion_auc"]).all()
    assert (good["insertion_auc"] > bad["insertion_auc"]).all()
    clean = QuadrantModel()(images).softmax(1)[:, 0]
    assert torch.allclose(good["deletion_curve"][:, 0], clean) and torch.allclose(good["insertion_curve"][:, -1], clean)
    assert good["insertion_curve"].shape == (2, 9)


def test_fixed_coverage_rewards_the_map_on_the_evidence_at_equal_area():
    checkerboard = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float()
    images = checkerboard.expand(2, 3, 16, 16).clone()
    classes = torch.zeros(2, dtype=torch.long)
    right = torch.zeros(2, 16, 16)
    right[:, :8, :8] = torch.rand(2, 8, 8) + 1  # the evidence, graded
    wrong = torch.zeros(2, 16, 16)
    wrong[:, 8:, 8:] = torch.rand(2, 8, 8) + 1
    good = fixed_coverage_metrics(QuadrantModel(), images, right, classes, coverages=(25,))
    bad = fixed_coverage_metrics(QuadrantModel(), images, wrong, classes, coverages=(25,))
    assert set(good) == {"average_drop@25", "increase_in_confidence@25", "average_drop@25:orders",
                         "increase_in_confidence@25:orders"}
    # Removing the top-left evidence takes class 0 from p = 0.993 to 0.5, a drop of 49.7.
    assert (good["average_drop@25"] < 1e-3).all() and (bad["average_drop@25"] > 49).all()


@pytest.mark.parametrize("fill", REMOVAL_FILLS)
def test_deletion_fills_and_insertion_starts(fill):
    checkerboard = ((torch.arange(16)[:, None] + torch.arange(16)[None]) % 2).float()
    images = checkerboard.expand(1, 3, 16, 16).clone()
    classes = torch.zeros(1, dtype=torch.long)
    everything = torch.ones(1, 16, 16)
    curves = insertion_deletion(QuadrantModel(), images, everything, classes, steps=4, deletion_fill=fill,
                                insertion_start=fill)
    start = QuadrantModel()(fill_image(images, fill)).softmax(1)[:, 0]
    assert torch.allclose(curves["insertion_curve"][:, 0], start)  # nothing inserted yet
    assert torch.allclose(curves["deletion_curve"][:, -1], start)  # everything deleted
    with pytest.raises(CamlabError, match="unknown fill 'grey'"):
        insertion_deletion(QuadrantModel(), images, everything, classes, deletion_fill="grey")
    with pytest.raises(CamlabError, match="steps must be a whole number"):
        insertion_deletion(QuadrantModel(), images, everything, classes, steps=0)


def test_insertion_deletion_does_not_depend_on_the_chunk():
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    maps, classes = torch.rand(3, 16, 16), torch.tensor([0, 1, 2])
    one = insertion_deletion(model, images, maps, classes, steps=5, chunk=1)
    many = insertion_deletion(model, images, maps, classes, steps=5, chunk=64)
    for key in ("insertion_curve", "deletion_curve"):
        assert torch.allclose(one[key], many[key], atol=1e-6)


class Counting(torch.nn.Module):
    """A model that counts the images it sees."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.model(x)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_insertion_deletion_equals_the_curves_built_step_by_step(steps):
    """Every point is the probability on the image RISE describes at that step — the map-free ends
    included, which run once per image — and a known ``clean`` saves one image per row."""
    torch.manual_seed(0)
    model, images = TinyNet().eval(), torch.rand(3, 3, 16, 16)
    maps, classes = torch.rand(3, 16, 16), torch.tensor([0, 1, 2])
    start, removed = fill_image(images, "blur"), torch.zeros_like(images)
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    expected = {"insertion": torch.empty(3, steps + 1), "deletion": torch.empty(3, steps + 1)}
    with torch.no_grad():
        for s in range(steps + 1):
            shown = torch.zeros(3, 256, dtype=torch.bool)
            shown.scatter_(1, order[:, : round(s * 256 / steps)], True)
            shown = shown.view(3, 1, 16, 16)
            for kind, picture in (("insertion", torch.where(shown, images, start)),
                                  ("deletion", torch.where(shown, removed, images))):
                expected[kind][:, s] = model(picture).softmax(1).gather(1, classes[:, None])[:, 0]
        clean = model(images).softmax(1).gather(1, classes[:, None])[:, 0]
    counting = Counting(model)
    curves = insertion_deletion(counting, images, maps, classes, steps=steps, clean=clean)
    for kind in ("insertion", "deletion"):
        assert torch.allclose(curves[f"{kind}_curve"], expected[kind], atol=1e-6), kind
        assert torch.allclose(curves[f"{kind}_auc"], torch.trapezoid(expected[kind], dx=1 / steps, dim=1))
    assert counting.seen == 3 * (2 * (steps - 1) + 2)  # two map-free ends per image, the rest per step
    counting.seen = 0
    insertion_deletion(counting, images, maps, classes, steps=steps)
    assert counting.seen == 3 * (2 * (steps - 1) + 3)


def test_the_scoring_copy_folds_batch_norms_only_in_plain_sequentials_and_scores_alike():
    from torch import nn

    from camlab.metrics.faithfulness import scoring_copy

    class Ordered(nn.Sequential):  # a subclass may run its children in any order: left alone
        pass

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          Ordered(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3))
    for norm in (model[1], model[3][1]):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    model.eval()
    x = torch.rand(5, 3, 16, 16)
    copy_ = scoring_copy(model, x[:1])
    assert copy_ is not model and isinstance(copy_[1], nn.Identity) and isinstance(copy_[3][1], nn.BatchNorm2d)
    assert torch.allclose(copy_(x).softmax(1), model(x).softmax(1), atol=1e-6)
    assert isinstance(model[1], nn.BatchNorm2d)  # the model itself is untouched
    assert scoring_copy(model.train(), x[:1]) is model  # train-mode batch norms cannot be folded


def test_removing_pixels_the_model_provably_ignores_drops_nothing():
    from camlab.metrics.faithfulness import region_occlusion
    from camlab.study.wallvgg import load_checkpoint
    from camlab.walls import unseen_region

    model = load_checkpoint("masked_vgg").model
    unseen = unseen_region(model, (3, 224, 224))
    assert unseen.sum() > 10_000
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    classes = model(images).argmax(1)
    for fill in ("black", "mean", "blur"):
        assert float(region_occlusion(model, images, unseen, classes, fill)["occlusion_drop"].max()) < 1e-3
    top = torch.zeros(224, 224, dtype=torch.bool)
    top[:112] = True  # what it reads
    assert float(region_occlusion(model, images, top, classes, "mean")["occlusion_drop"].max()) > 1
