"""Statistical checks against closed forms: unbiasedness within standard error and SE coverage.

All replicates run as one batch (leading dimension), seeded; tolerances come from standard errors."""

import math

import pytest
import torch

from ebmlab.estimators import GaussianNoise, ais, bridge, importance_sampling, mis, nce_log_z, reciprocal_is, rlr
from ebmlab.sampling.kernels import Move

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SIG = torch.tensor([0.7, 1.3], dtype=torch.float64)
LOG_Z = math.log(2 * math.pi) + float(SIG.log().sum())
REPS = 200


def log_phi(x):
    return -0.5 * (((x - MU) / SIG) ** 2).sum(-1)


def draws(noise, n1, n2, seed):
    """Batched (REPS, N) log densities for target draws x and noise draws y."""
    g = torch.Generator().manual_seed(seed)
    x = MU + SIG * torch.randn(REPS, n1, 2, generator=g, dtype=torch.float64)
    y = noise.sample(REPS * n2, g).reshape(REPS, n2, 2)
    return log_phi(x), noise.log_prob(x), log_phi(y), noise.log_prob(y)


def rlr_two_state(data):
    lq = torch.stack([torch.cat([data[0], data[2]], -1), torch.cat([data[1], data[3]], -1)], -2)
    est = rlr(lq, [data[0].shape[-1], data[2].shape[-1]], {1: 0.0})
    return est.log_z[:, 0], est.se[:, 0]


def estimates():
    wide = draws(GaussianNoise(torch.zeros(2), 2.0), 500, 1500, seed=11)
    narrow = draws(GaussianNoise(MU, 0.6 * SIG), 1500, 10, seed=12)  # RIS needs lighter-tailed q
    out = {
        "is": importance_sampling(wide[2], wide[3]),
        "ris": reciprocal_is(narrow[0], narrow[1]),
        "geometric": bridge(*wide, alpha="geometric"),
        "optimal": bridge(*wide),
        "nce": nce_log_z(*wide),
    }
    out = {k: (v.log_z, v.se) for k, v in out.items()}
    out["rlr"] = rlr_two_state(wide)
    g = torch.Generator().manual_seed(13)
    q1, q2 = GaussianNoise(torch.tensor([-1.0, 0.0]), 1.5), GaussianNoise(torch.tensor([2.0, 1.0]), 1.0)
    y = torch.cat([q1.sample(REPS * 400, g).reshape(REPS, 400, 2), q2.sample(REPS * 400, g).reshape(REPS, 400, 2)], 1)
    log_q = torch.stack([q1.log_prob(y), q2.log_prob(y)], -2)
    for w in ("standard", "deterministic-mixture"):
        e = mis(log_phi(y), log_q, [400, 400], weights=w)
        out[f"mis-{w}"] = (e.log_z, e.se)
    return out


@pytest.fixture(scope="module")
def results():
    return estimates()


@pytest.mark.parametrize(
    "name", ["is", "ris", "geometric", "optimal", "nce", "rlr", "mis-standard", "mis-deterministic-mixture"]
)
def test_unbiased_within_standard_error(results, name):
    log_z, se = results[name]
    err = log_z - LOG_Z
    assert abs(float(err.mean())) < 4 * float(err.std()) / math.sqrt(REPS)
    # the reported SE matches the spread across replicates
    assert 0.75 < float(err.std() / se.mean()) < 1.33


@pytest.mark.parametrize("name", ["is", "optimal", "rlr", "nce"])
def test_standard_error_coverage(results, name):
    log_z, se = results[name]
    coverage = float(((log_z - LOG_Z).abs() <= 1.96 * se).double().mean())
    assert 0.90 <= coverage <= 0.98, coverage


def gaussian_energy(mean, std):
    return lambda x: 0.5 * (((x - mean) / std) ** 2).sum(-1)


D = 5
LOG_Z0 = 0.5 * D * math.log(2 * math.pi)
MEAN1, STD1 = 0.5, 0.6
LOG_Z1 = LOG_Z0 + D * math.log(STD1)


@pytest.mark.parametrize("kernel", ["mala", "ula"])
def test_ais_unbiased_and_bracketing(kernel):
    g = torch.Generator().manual_seed(21)
    u0, u1 = gaussian_energy(0.0, 1.0), gaussian_energy(MEAN1, STD1)
    x0 = torch.randn(3000, D, generator=g, dtype=torch.float64)
    fwd = ais(u0, u1, x0, LOG_Z0, 10, move=Move(kernel, 0.1), generator=g)
    assert abs(float(fwd.log_z) - LOG_Z1) < 4 * float(fwd.se)
    x1 = MEAN1 + STD1 * torch.randn(3000, D, generator=g, dtype=torch.float64)
    rev = ais(u0, u1, x1, LOG_Z0, 10, move=Move(kernel, 0.1), generator=g, reverse=True)
    assert abs(float(rev.log_z) - LOG_Z1) < 4 * float(rev.se)
    # mean log-weights bound log Z from both sides (Jensen)
    lower = LOG_Z0 + float(fwd.diagnostics["log_w"].mean())
    upper = LOG_Z0 - float(rev.diagnostics["log_w"].mean())
    assert lower < LOG_Z1 < upper


def test_ais_identical_endpoints_give_unit_weights():
    g = torch.Generator().manual_seed(22)
    u = gaussian_energy(0.0, 1.0)
    est = ais(u, u, torch.randn(100, 3, generator=g, dtype=torch.float64), 1.5, 5, move=Move("mala", 0.2), generator=g)
    assert est.diagnostics["log_w"].abs().max() < 1e-13  # (1 - b) U + b U = U up to rounding
    assert abs(float(est.log_z) - 1.5) < 1e-13 and 0 < est.diagnostics["acceptance"] <= 1


def test_ais_rejects_bad_schedule():
    u = gaussian_energy(0.0, 1.0)
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="betas"):
        ais(u, u, x, 0.0, torch.tensor([0.0, 0.7, 0.5, 1.0]), move=Move("mala", 0.1), generator=torch.Generator())
    with pytest.raises(ValueError, match="kernel"):
        ais(u, u, x, 0.0, 3, move=Move("hmc", 0.1), generator=torch.Generator())
