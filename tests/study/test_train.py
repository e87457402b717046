"""Training: the wall survives optimiser steps, the regulariser lowers the gradient distance."""
import torch

from camlab.study.augment import AugmentConfig
from camlab.study.data import StackedDataset
from camlab.study.train import mean_gradient_distance, short_run, train, training_loss
from camlab.study.wallvgg import load_checkpoint, masked_vgg
from tests.paths import MODELS


def test_wall_weights_stay_zero_after_training_steps():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=2, batch_norm=True)
    data = StackedDataset("stack-shapes", "train", size=64, length=16, masks=True)
    train(model, data, epochs=1, batch_size=8, lr=1e-2, seed=0, augmentation=AugmentConfig(), progress=False)
    weight = model.classifier[0].weight.view(model.classifier[0].out_features, -1, 4, 4)
    assert torch.count_nonzero(weight[:, :, 2:, :]) == 0
    assert torch.count_nonzero(weight[:, :, :2, :]) > 0


def test_guided_gradient_regulariser_reduces_the_gradient_distance():
    torch.manual_seed(0)
    model = masked_vgg(width=0.0625, input_size=64, masked_rows=0, batch_norm=True, dropout=0.0)
    data = StackedDataset("stack-shapes", "train", size=64, length=32, masks=True)
    plain = StackedDataset("stack-shapes", "train", size=64, length=32)
    before = mean_gradient_distance(model, plain)
    images, labels, _ = next(iter(torch.utils.data.DataLoader(data, batch_size=32)))
    targets = torch.nn.functional.one_hot(labels, 8).float()
    loss, ce, dist, logits = training_loss(model, images, targets, labels, guided_grad_reg=1.0)
    assert logits.shape == (32, 8)
    assert torch.isclose(loss, ce + dist)
    train(model, data, epochs=4, batch_size=16, lr=1e-3, seed=0, guided_grad_reg=10.0, progress=False)
    after = mean_gradient_distance(model, plain)
    assert after < before - 0.05


def test_short_run_trains_a_copy_and_reports():
    baseline = load_checkpoint(MODELS / "baseline_vgg.pt").model
    before = {k: v.clone() for k, v in baseline.state_dict().items()}
    seen = []
    run = short_run(baseline, steps=2, guided_grad_reg=1.0, batch_size=4, check_images=8,
                    on_step=lambda done, total, stats: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    assert all(torch.equal(before[k], v) for k, v in baseline.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in run["model"].state_dict().items())
    assert set(run["before"]) == set(run["after"]) == {"accuracy", "grad_distance"}


def test_the_study_helpers_give_the_callers_model_back_in_its_own_mode():
    import torch

    from camlab.study.data import StackedDataset
    from camlab.study.train import accuracy, mean_gradient_distance
    from camlab.study.wallvgg import masked_vgg

    torch.manual_seed(0)
    model = masked_vgg(width=1 / 64, input_size=32, masked_rows=1, hidden=8, batch_norm=True).train()
    model.features[1].eval()  # one module in its own mode
    data = StackedDataset("stack-shapes", "val", size=32, length=4)
    accuracy(model, data)
    mean_gradient_distance(model, data)
    assert model.training and not model.features[1].training and model.features[4].training
