"""Langevin on closed forms (ULA stationary law, linear-Gaussian posterior), samplers, loop, resume, errors."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from ebmlab.latent import (
    ChainConfig,
    DAMCConfig,
    DAMCSampler,
    GaussianPrior,
    LatentDiffusion,
    LatentEBMPrior,
    LatentModel,
    LatentTrainer,
    LEBMSampler,
    LoopConfig,
    MLPEncoder,
    MLPGenerator,
    gradient_descent,
    langevin,
)
from ebmlab.latent.anomaly import auprc, heldout_split
from ebmlab.training import DivergenceError


def linear_gaussian(sigma=0.8):
    """g(z) = W z + b (no hidden layer), E = 0: the posterior is Gaussian in closed form."""
    gen = MLPGenerator(2, 3, hidden=())
    with torch.no_grad():
        gen.net[0].weight.copy_(torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -0.4]]))
        gen.net[0].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    model = LatentModel(gen.double(), GaussianPrior(2), sigma)
    w, b = gen.net[0].weight.detach(), gen.net[0].bias.detach()
    x = torch.tensor([1.0, 0.5, -0.5], dtype=torch.float64)
    prec = torch.eye(2, dtype=torch.float64) + w.T @ w / sigma**2
    cov = torch.linalg.inv(prec)
    mu = cov @ w.T @ (x - b) / sigma**2
    return model, x, prec, cov, mu


def test_ula_stationary_variance_flat_energy():
    """E = 0, s = 0.4 (h = 0.08): ULA's stationary variance is exactly 1 / (1 - h/2) = 1.0417."""
    g = torch.Generator().manual_seed(0)
    prior = GaussianPrior(2)
    n = 40000
    z = langevin(prior, torch.randn(n, 2, generator=g), 150, 0.4, g)
    var = z.double().var().item()
    h = 0.08
    expected = 1 / (1 - h / 2)
    se = expected * math.sqrt(2 / (2 * n))
    assert abs(var - expected) < 4 * se
    assert abs(var - 1.0) > 4 * se  # the test resolves the O(h) bias


def test_posterior_langevin_matches_linear_gaussian():
    model, x, prec, cov, mu = linear_gaussian()
    g = torch.Generator().manual_seed(1)
    n, s = 20000, 0.3
    h = s * s / 2
    xs = x.expand(n, 3)
    z = langevin(model.posterior_energy(xs), torch.randn(n, 2, generator=g, dtype=torch.float64), 300, s, g)
    emp_mean, emp_cov = z.mean(0), torch.cov(z.T)
    ula_cov = torch.linalg.inv(prec @ (torch.eye(2, dtype=torch.float64) - h * prec / 2))  # exact ULA law
    se_mean = (torch.diagonal(ula_cov) / n).sqrt()
    assert ((emp_mean - mu).abs() < 4 * se_mean).all()
    se_cov = ((torch.diagonal(ula_cov)[:, None] * torch.diagonal(ula_cov)[None] + ula_cov**2) / n).sqrt()
    assert ((emp_cov - ula_cov).abs() < 4 * se_cov).all()
    assert ((emp_cov - cov).abs() < 4 * se_cov + h * cov.abs().max() * prec.abs().max()).all()  # O(h) of exact


def test_gradient_descent_finds_posterior_mode_and_anomaly_score():
    model, x, _, _, mu = linear_gaussian()
    z = gradient_descent(model.posterior_energy(x[None]), torch.zeros(1, 2, dtype=torch.float64), 300, 0.2)
    torch.testing.assert_close(z[0], mu, atol=1e-6, rtol=0)
    zz = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xx = x.expand(4, 3)
    # negative log joint with sigma^2 = 1/2 (up to constants)
    manual = (xx - model.generator(zz)).square().sum(1) + 0.5 * zz.square().sum(1)
    torch.testing.assert_close(model.anomaly_score(xx, zz), manual)


def test_auprc_hand_computed_and_split():
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    # PR points (R, P): (0, 1), (0.5, 1), (0.5, 0.5), (1, 2/3); trapezoid area = 0.5 + 0.5 (1/2 + 2/3) / 2
    assert auprc(labels, scores) == pytest.approx(19 / 24, abs=1e-12)
    assert average_precision_score(labels, scores) == pytest.approx(5 / 6)  # a different quantity
    with pytest.raises(ValueError, match="both normal"):
        auprc(np.zeros(3), np.arange(3.0))
    lab = np.repeat(np.arange(10), 10)
    tr, te, is_anom = heldout_split(lab, 4)
    assert len(tr) == 72 and len(te) == 28 and is_anom.sum() == 10
    assert (lab[tr] != 4).all() and set(lab[te[is_anom == 1]]) == {4}
    assert not set(tr) & set(te)
    with pytest.raises(ValueError, match="unknown held-out digit"):
        heldout_split(lab, 12)


def _toy_setup(sampler_name, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = LatentModel(MLPGenerator(2, 3, (16,)), LatentEBMPrior(2, (16,)), 0.3)
    data = torch.randn(64, 3, generator=g)
    chains = ChainConfig(prior_steps=5, post_steps=5, eval_prior_steps=5, refine_steps=2)
    if sampler_name == "lebm":
        sampler = LEBMSampler(chains)
    else:
        q = LatentDiffusion(2, MLPEncoder(3, 16, (16,)), 16, nf=1, t_dim=16, n_steps=5)
        sampler = DAMCSampler(q, chains, DAMCConfig(q_updates=2, ema_every=2, ema_rho=0.5))
    return LatentTrainer(model, sampler, data, LoopConfig(batch_size=16, decay_every=3), g)


@pytest.mark.parametrize("name", ["lebm", "damc"])
def test_loop_resume_is_exact(name, tmp_path):
    full = _toy_setup(name)
    full.run(6, progress=False)
    part = _toy_setup(name)
    part.run(3, checkpoint_path=tmp_path / "ck.pt", progress=False)
    resumed = _toy_setup(name)
    resumed.resume(tmp_path / "ck.pt")
    resumed.run(6, progress=False)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert full.history == resumed.history
    assert full.opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.99**2)
    g = torch.Generator().manual_seed(3)
    assert full.sampler.infer(full.model, full.data[:4], g).shape == (4, 2)
    assert full.sampler.generate(full.model, 5, g).shape == (5, 2)


def test_divergence_and_option_errors(tmp_path):
    tr = _toy_setup("lebm")
    tr.run(1, checkpoint_path=tmp_path / "ck.pt", progress=False)
    with torch.no_grad():
        tr.model.generator.net[0].weight.fill_(float("nan"))
    with pytest.raises(DivergenceError, match="iteration 1"):
        tr.run(3, checkpoint_path=tmp_path / "ck.pt", progress=False)
    assert (tmp_path / "ck.pt").is_file()
    with pytest.raises(ValueError, match="latent size mismatch"):
        LatentModel(MLPGenerator(2, 3), LatentEBMPrior(3), 0.3)
    q = LatentDiffusion(4, MLPEncoder(3, 8, (8,)), 8, nf=1, t_dim=8, n_steps=3)
    with pytest.raises(ValueError, match="latent size mismatch"):
        DAMCSampler(q).training_chains(tr.model, tr.data[:2], torch.Generator())
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        tr.model.posterior_energy(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="prior_init"):
        DAMCConfig(prior_init="noise")
