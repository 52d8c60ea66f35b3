"""Diffusion schedule identities, oracle denoisers, EMA, condition dropout, and the eps-loss decreasing."""

import math

import pytest
import torch

from ebmlab.latent.diffusion import (
    CosineLogSNR,
    LatentDiffusion,
    MLPEncoder,
    alpha_sigma,
    ancestral_sample,
    ddpm_posterior,
    dropout_mask,
    ema_update,
    predict_x0,
    time_grid,
)
from ebmlab.latent.toy import pinwheel

SCHED = CosineLogSNR()


def test_schedule_endpoints_and_identities():
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    lam = SCHED.logsnr(t)
    assert lam[0].item() == pytest.approx(9.8, abs=1e-9)
    assert lam[-1].item() == pytest.approx(-5.1, abs=1e-9)
    assert (lam[1:] < lam[:-1]).all()
    a, s = alpha_sigma(lam)
    torch.testing.assert_close(a**2 + s**2, torch.ones_like(a), rtol=0, atol=1e-12)
    torch.testing.assert_close(a**2 / s**2, lam.exp(), rtol=1e-10, atol=0)
    assert (a[0] ** 2).item() == pytest.approx(0.99994, abs=1e-5)
    assert (a[-1] ** 2).item() == pytest.approx(0.00606, abs=5e-5)
    with pytest.raises(ValueError, match="lambda_min < lambda_max"):
        CosineLogSNR(2.0, 1.0)


def test_x0_from_true_noise_and_posterior_variance():
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(50, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(50, 3, generator=g, dtype=torch.float64)
    lam = torch.tensor(0.7, dtype=torch.float64)
    a, s = alpha_sigma(lam)
    torch.testing.assert_close(predict_x0(a * z0 + s * eps, eps, lam), z0)
    lam_t, lam_s = torch.tensor(-1.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    (a_t, s_t), (a_s, s_s) = alpha_sigma(lam_t), alpha_sigma(lam_s)
    _, var = ddpm_posterior(z0, z0, lam_t, lam_s)
    torch.testing.assert_close(var, s_t**2 - (a_t / a_s) ** 2 * s_s**2)
    # oracle x0_hat for z0 ~ N(0, I) is alpha_t z_t: the step mean is alpha_{t|s} z_t (exact reverse of the forward)
    mean, _ = ddpm_posterior(z0, a_t * z0, lam_t, lam_s)
    torch.testing.assert_close(mean, (a_t / a_s) * z0)
    torch.testing.assert_close((a_t / a_s) ** 2 + var, torch.tensor(1.0, dtype=torch.float64))


def test_time_grid():
    ts = time_grid(100)
    assert ts.shape == (100,) and ts[0] == 1 and ts[-1] == 0
    torch.testing.assert_close(ts[98], torch.tensor(1 / 99))
    with pytest.raises(ValueError, match="at least 2"):
        time_grid(1)


@pytest.mark.parametrize("m,v", [(0.0, 1.0), (1.5, 0.25)])
def test_oracle_denoiser_sampling(m, v):
    n, d, steps = 40000, 2, 100
    g = torch.Generator().manual_seed(1)

    def eps_oracle(z, lam):
        a, s = alpha_sigma(lam[:, None].double())
        return s * (z - a * m) / (a**2 * v + s**2)

    z = ancestral_sample(eps_oracle, (n, d), SCHED, steps, g, dtype=torch.float64)
    a0_sq = torch.sigmoid(torch.tensor(9.8, dtype=torch.float64)).item()
    mean, var = z.mean().item(), z.var().item()
    se_mean, se_var = math.sqrt(v / (n * d)), v * math.sqrt(2 / (n * d))
    if v == 1.0:  # exact: output N(0, alpha^2 I) at the last grid time
        assert abs(mean) < 4 * se_mean
        assert abs(var - a0_sq) < 4 * se_var
    else:  # approximate for v != 1
        assert abs(mean - m) < 4 * se_mean + 0.01
        assert abs(var - v) < 4 * se_var + 0.02 * v


def test_ema_and_dropout_rate():
    src, tgt = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    old = [p.detach().clone() for p in tgt.parameters()]
    ema_update(tgt, src, 0.25)
    for pt, ps, po in zip(tgt.parameters(), src.parameters(), old):
        torch.testing.assert_close(pt, 0.25 * ps + 0.75 * po)
    with pytest.raises(ValueError, match="rho"):
        ema_update(tgt, src, 0.0)
    n, p = 40000, 0.2
    frac = dropout_mask(n, p, torch.Generator().manual_seed(0)).double().mean().item()
    assert abs(frac - (1 - p)) < 4 * math.sqrt(p * (1 - p) / n)


def test_denoiser_loss_decreases_on_fixed_toy():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    z0 = pinwheel(256, g)
    x = z0 + 0.1 * torch.randn(z0.shape, generator=g)
    q = LatentDiffusion(2, MLPEncoder(2, 32, (32,)), 32, nf=1, t_dim=32, n_steps=10)
    opt = torch.optim.Adam(q.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = q.loss(z0, x, g)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.6 * first, (first, last)
    with pytest.raises(ValueError, match="latent size mismatch"):
        q.loss(torch.zeros(4, 3), None, g)
    assert q.sample(7, g, x=x[:7]).shape == (7, 2) and q.sample(5, g).shape == (5, 2)
