"""Rank correlation with average ranks, SSIM, gradient distances: checked against scipy and scikit-image."""
import numpy as np
import pytest
import torch
from scipy.stats import rankdata, spearmanr
from skimage.metrics import structural_similarity

from camlab.errors import CamlabError
from camlab.metrics.similarity import average_ranks, gradient_distance, spearman, ssim


def test_average_ranks_and_spearman_match_scipy_with_ties():
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(4, 60, generator=generator).round(decimals=1)  # many ties
    b = torch.rand(4, 60, generator=generator).clamp(min=0.6)  # 60% of the pixels tied at the floor
    expected_ranks = np.stack([rankdata(row) - 1 for row in a.numpy()])
    assert np.allclose(average_ranks(a).numpy(), expected_ranks)
    expected = [spearmanr(x, y).statistic for x, y in zip(a.numpy(), b.numpy())]
    assert np.allclose(spearman(a, b).numpy(), expected, atol=1e-5)
    assert float(spearman(a[:1], a[:1])) == pytest.approx(1) and float(spearman(a[:1], -a[:1])) == pytest.approx(-1)
    assert float(spearman(torch.zeros(1, 10), a[:1, :10])) == 0  # a constant map has no ordering...
    assert float(spearman(torch.zeros(1, 10), torch.zeros(1, 10))) == 1  # ...but two equal ones did not change


def test_ssim_matches_scikit_image():
    generator = torch.Generator().manual_seed(1)
    a = torch.rand(2, 40, 50, generator=generator)
    b = a * 0.7 + 0.3 * torch.rand(2, 40, 50, generator=generator)
    expected = [structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
                for x, y in zip(a.double().numpy(), b.double().numpy())]
    assert np.allclose(ssim(a, b).numpy(), expected, atol=1e-4)
    assert float(ssim(a[:1], a[:1])) == pytest.approx(1, abs=1e-5)


def test_gradient_distances():
    a = torch.randn(3, 3, 8, 8)
    assert float(gradient_distance(a, 2 * a)) == pytest.approx(0, abs=1e-6)
    assert float(gradient_distance(a, -a)) == pytest.approx(2)
    assert float(gradient_distance(a, 5 * a, "mse")) == pytest.approx(0, abs=1e-6)
    with pytest.raises(CamlabError, match="unknown distance 'l1'"):
        gradient_distance(a, a, "l1")
