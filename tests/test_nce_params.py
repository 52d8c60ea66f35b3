"""NCE learning a diagonal Gaussian's natural parameters (the estimator study's parameter-MSE column): consistent,
self-normalising, and its exact log normalizer."""

import math

import torch

from ebmlab.estimators import GaussianNoise
from ebmlab.experiments.estimators.nce_params import log_normalizer, nce_fit

D = torch.float64


def test_log_normalizer_closed_form():
    theta = torch.tensor([[0.5, -1.0, -0.5, -2.0, 0.0]], dtype=D)  # a = (0.5, -1), b = (-0.5, -2)
    a, b = theta[0, :2], theta[0, 2:4]
    grid = torch.linspace(-12, 12, 200_001, dtype=D)
    numeric = sum(math.log(torch.trapezoid(torch.exp(a[j] * grid + b[j] * grid**2), grid)) for j in range(2))
    assert abs(float(log_normalizer(theta)) - numeric) < 1e-9
    assert float(log_normalizer(torch.tensor([[0.0, 1.0, 0.0]], dtype=D))) == math.inf


def test_nce_recovers_the_parameters_and_normalises_itself():
    """20 replicates of 4000 data and 4000 noise draws: the natural parameters within 5 SE of the truth (SE from
    the spread over replicates) and -c equal to the fitted model's exact log Z up to noise (sd about 0.02)."""
    g = torch.Generator().manual_seed(0)
    mu, std = torch.tensor([1.0, -0.5], dtype=D), torch.tensor([0.7, 1.3], dtype=D)
    q = GaussianNoise(torch.zeros(2), 1.5)
    x = mu + std * torch.randn(20, 4000, 2, generator=g, dtype=D)
    y = q.sample(20 * 4000, g).reshape(20, 4000, 2)
    theta = nce_fit(x, y, q.log_prob(x), q.log_prob(y))
    truth = torch.cat([mu / std.square(), -0.5 / std.square()])
    err = theta[:, :4] - truth
    assert bool((err.mean(0).abs() < 5 * err.std(0) / math.sqrt(20)).all())
    z_err = -theta[:, -1] - log_normalizer(theta)  # NCE's log Z of its own fitted model, minus the exact one
    assert abs(float(z_err.mean())) < 4 * float(z_err.std()) / math.sqrt(20) and float(z_err.std()) < 0.05
