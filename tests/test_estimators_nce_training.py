"""NCE training of an energy together with its log Z (ebmlab.training.nce)."""

import math

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.estimators import GaussianNoise, MixtureNoise, StudentTNoise, nce_log_z
from ebmlab.training.nce import nce_loss, train_nce


def test_learns_gaussian_parameters_and_log_z():
    g = torch.Generator().manual_seed(0)
    truth = Gaussian(torch.tensor([1.5, -1.0], dtype=torch.float64), torch.tensor([0.5, 2.0], dtype=torch.float64))
    data = truth.sample(4000, g)
    model = Gaussian(torch.zeros(2, dtype=torch.float64), 1.0)
    noise = GaussianNoise.fit(data, inflate=1.5)
    fit = train_nce(model, data, noise, generator=g, nu=2.0, steps=800, lr=0.03)
    with torch.no_grad():
        assert torch.allclose(model.mean, truth.mean, atol=0.1)
        assert torch.allclose(model.log_std.exp(), truth.log_std.exp(), rtol=0.1)
        exact = float(model.log_z())
        # E6: at the joint optimum the learned log Z is the c-only NCE (= optimal bridge) log Z at theta-hat
        y = noise.sample(200_000, g)
        post = nce_log_z(-model(data), noise.log_prob(data), -model(y), noise.log_prob(y))
    assert abs(fit.log_z - exact) < 0.05
    assert abs(float(post.log_z) - exact) < 4 * float(post.se) + 1e-3
    assert fit.loss[-1] < fit.loss[0]


def test_loss_matches_logistic_formula():
    g = torch.Generator().manual_seed(1)
    model = Gaussian(torch.zeros(1, dtype=torch.float64), 1.0)
    noise = GaussianNoise(torch.zeros(1), 2.0)
    x, y = torch.randn(5, 1, generator=g, dtype=torch.float64), noise.sample(10, g)
    log_z = torch.tensor(0.3, dtype=torch.float64)
    with torch.no_grad():
        gx = -model(x) - log_z - noise.log_prob(x) - math.log(2)
        gy = -model(y) - log_z - noise.log_prob(y) - math.log(2)
        h = lambda t: 1 / (1 + torch.exp(-t))
        expected = -(torch.log(h(gx)).sum() + torch.log(1 - h(gy)).sum()) / 5
        assert abs(float(nce_loss(model, log_z, x, y, noise)) - float(expected)) < 1e-12


def test_gmm_student_mode_masses():
    """The GMM study in small dimension: NCE recovers the 1/4 : 3/4 masses that PCD loses."""
    from ebmlab.experiments.estimators.nce_gmm import NceGmmConfig, run_nce_gmm

    res = run_nce_gmm(NceGmmConfig(dim=3, n_data=2000, steps=600, lr=0.08, n_eval_noise=20_000), 0, False)
    assert res["mode_masses"]["left"] == pytest.approx(0.25, abs=0.03)
    assert res["log_z_learned"] == pytest.approx(res["log_z_exact_student"], abs=0.1)


@pytest.mark.parametrize(
    "noise",
    [
        GaussianNoise(torch.tensor([0.5, -1.0]), torch.tensor([1.0, 2.0])),
        StudentTNoise(torch.tensor([0.5, -1.0]), 1.5, df=4),
        MixtureNoise([GaussianNoise(torch.zeros(2), 1.0), GaussianNoise(torch.ones(2), 0.5)], [0.3, 0.7]),
    ],
)
def test_noise_log_prob_is_normalised_and_matches_samples(noise):
    g = torch.Generator().manual_seed(2)
    grid = torch.linspace(-25, 25, 1001, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)
    mass = float(noise.log_prob(pts).exp().sum()) * float(grid[1] - grid[0]) ** 2
    assert mass == pytest.approx(1.0, abs=2e-3)
    # samples have the density's mean (IS check with the density itself)
    s = noise.sample(20_000, g)
    mean_from_density = (noise.log_prob(pts).exp()[:, None] * pts).sum(0) * float(grid[1] - grid[0]) ** 2
    assert torch.allclose(s.mean(0), mean_from_density, atol=0.06)


def test_rejects_bad_arguments():
    model = Gaussian(torch.zeros(1, dtype=torch.float64), 1.0)
    noise = GaussianNoise(torch.zeros(1), 1.0)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="nu"):
        train_nce(model, torch.zeros(10, 1, dtype=torch.float64), noise, generator=g, nu=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_nce(model, torch.zeros(10, 1, dtype=torch.float64), noise, generator=g, batch_size=20)
    with pytest.raises(ValueError, match="std must be positive"):
        GaussianNoise(torch.zeros(2), 0.0)
