import numpy as np
import pytest
import torch

from ebmlab.metrics.frechet import frechet_distance, frechet_from_moments, gaussian_moments


def _closed_form_2d(mu_a, cov_a, mu_b, cov_b):
    """2x2 case: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) with M = S_a^1/2 S_b S_a^1/2,
    tr M = tr(S_a S_b), det M = det S_a det S_b."""
    tr_sqrt = np.sqrt(np.trace(cov_a @ cov_b) + 2 * np.sqrt(np.linalg.det(cov_a) * np.linalg.det(cov_b)))
    d = mu_a - mu_b
    return d @ d + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt


def _rotation(t):
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def test_moments_match_closed_form_for_non_commuting_covariances():
    mu_a, mu_b = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    cov_a = _rotation(0.3) @ np.diag([4.0, 0.25]) @ _rotation(0.3).T
    cov_b = _rotation(1.1) @ np.diag([1.0, 9.0]) @ _rotation(1.1).T
    assert frechet_from_moments(mu_a, cov_a, mu_b, cov_b) == pytest.approx(
        _closed_form_2d(mu_a, cov_a, mu_b, cov_b), rel=1e-12
    )


def test_diagonal_case_and_singular_covariance():
    # commuting covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2; a zero variance is allowed
    a, b = np.array([4.0, 1.0, 0.0]), np.array([1.0, 9.0, 4.0])
    mu = np.zeros(3)
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_from_moments(mu, np.diag(a), mu + 1.0, np.diag(b)) == pytest.approx(expected + 3.0, rel=1e-12)


def test_samples_agree_with_population_value_within_sampling_error():
    rng = np.random.default_rng(0)
    mu_a, mu_b = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    cov_a = np.array([[2.0, 0.8], [0.8, 1.0]])
    cov_b = np.array([[1.0, -0.3], [-0.3, 0.5]])
    truth = _closed_form_2d(mu_a, cov_a, mu_b, cov_b)
    values = [
        frechet_distance(rng.multivariate_normal(mu_a, cov_a, 5000), rng.multivariate_normal(mu_b, cov_b, 5000))
        for _ in range(20)
    ]
    se = np.std(values, ddof=1) / np.sqrt(len(values))
    assert abs(np.mean(values) - truth) < 4 * se + 0.01  # + small O(D/N) estimation bias


def test_identical_sets_give_zero_and_torch_input_and_symmetry():
    x = torch.randn(200, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = x + torch.tensor([1.0, 0, 0, 0, 0], dtype=torch.float64)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(x, y) == pytest.approx(1.0, rel=1e-9)  # a pure shift costs |shift|^2
    z = torch.randn(300, 5, generator=torch.Generator().manual_seed(2)) * 2
    assert frechet_distance(x, z) == pytest.approx(frechet_distance(z, x), rel=1e-9)


def test_moments_shapes_and_errors():
    mu, cov = gaussian_moments(np.ones((10, 3)))
    assert mu.shape == (3,) and cov.shape == (3, 3)
    with pytest.raises(ValueError, match="shape"):
        frechet_distance(np.ones(5), np.ones((5, 1)))
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.ones((5, 2)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((5, 2), np.nan), np.ones((5, 2)))


def test_weighted_moments_equal_unweighted_ones_and_duplicates():
    """Equal weights give the usual mean and N - 1 covariance; integer weights give the moments of the
    sample with each point repeated that often, up to the N - 1 (reliability) correction."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    mu, cov = gaussian_moments(x, np.full(40, 1 / 40))
    assert np.allclose(mu, x.mean(0)) and np.allclose(cov, np.cov(x, rowvar=False))
    counts = rng.integers(1, 4, size=40)
    rep = np.repeat(x, counts, axis=0)
    mu_w, cov_w = gaussian_moments(x, counts / counts.sum())
    w = counts / counts.sum()
    assert np.allclose(mu_w, rep.mean(0))
    assert np.allclose(cov_w * (1 - (w * w).sum()), np.cov(rep, rowvar=False, ddof=0))
    with pytest.raises(ValueError, match="summing to 1"):
        gaussian_moments(x, np.ones(40))
