"""The weighted-walker engine: kernels, reweighting across an energy change, mini-batched moves,
log-Z bookkeeping and the genealogy standard error."""

import math

import pytest
import torch

from ebmlab.energies import Gaussian, MLPEnergy
from ebmlab.sampling.langevin import energy_and_grad, transition_log_weight, ula_propose
from ebmlab.sampling.resampling import Resampling
from ebmlab.sampling.smc import Move, advance, get_kernel, start, step
from ebmlab.sampling.walkers import log_z_estimate, log_z_relvar, log_z_se, normalized_weights, resample

D = torch.float64


def _energy_pair(n=8, d=5):
    """An MLP energy, walkers cached under theta_k, and the same module moved to theta_{k+1}."""
    torch.manual_seed(0)
    energy = MLPEnergy(d, hidden=(16,), zero_init_output=False).to(D)
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=D)
    walkers = start(energy, x)
    with torch.no_grad():
        for p in energy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return energy, walkers


def test_minibatched_update_with_all_walkers_moved_equals_full_update():
    energy, walkers = _energy_pair()
    move = Move("ula", step_size=1e-2, n_steps=3)
    full, _ = advance(walkers, energy, move, torch.Generator().manual_seed(5))
    every, _ = advance(walkers, energy, move, torch.Generator().manual_seed(5), subset=torch.arange(8))
    assert torch.equal(full.x, every.x) and torch.equal(full.state.energy, every.state.energy)
    assert torch.allclose(full.log_w, every.log_w, rtol=0, atol=1e-12)

    # independent check: the first step crosses theta_k -> theta_{k+1}, later steps stay at theta_{k+1}
    g = torch.Generator().manual_seed(5)
    x, u, grad, total = walkers.x, walkers.state.energy, walkers.state.grad, torch.zeros(8, dtype=D)
    for _ in range(3):
        y = ula_propose(x, grad, 1e-2, g)
        u_y, g_y = energy_and_grad(energy, y)
        total += transition_log_weight(x, y, u, grad, u_y, g_y, 1e-2)
        x, u, grad = y, u_y, g_y
    assert torch.allclose(full.x, x) and torch.allclose(full.log_w, total, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", ["ula", "mala"])
def test_unmoved_walkers_get_the_ais_increment(kernel):
    energy, walkers = _energy_pair()
    moved, still = torch.tensor([6, 1, 4]), torch.tensor([0, 2, 3, 5, 7])
    out, _ = advance(walkers, energy, Move(kernel, 1e-2, n_steps=2), torch.Generator().manual_seed(0), subset=moved)
    with torch.no_grad():
        u_new = energy(walkers.x)
    assert torch.equal(out.x[still], walkers.x[still])
    ais = walkers.state.energy - u_new
    assert torch.allclose(out.log_w[still], ais[still], rtol=0, atol=1e-12)
    assert not torch.equal(out.x[moved], walkers.x[moved])
    assert torch.allclose(out.state.energy, energy(out.x).detach(), rtol=0, atol=1e-12)  # cached under theta_{k+1}


def test_mala_increment_is_the_ais_work_and_rejections_stay_put():
    energy, walkers = _energy_pair(n=64)
    with torch.no_grad():
        ais = walkers.state.energy - energy(walkers.x)
    out, info = advance(walkers, energy, Move("mala", 0.05, n_steps=3), torch.Generator().manual_seed(0))
    assert torch.allclose(out.log_w, ais, rtol=0, atol=1e-12)  # whatever the moves did
    assert 0 < float(info.accept_rate) <= 1
    huge, info = advance(walkers, energy, Move("mala", 1e6), torch.Generator().manual_seed(0))
    assert float(info.accept_rate) == 0.0  # every proposal rejected: nobody moved
    assert torch.equal(huge.x, walkers.x) and torch.allclose(huge.log_w, ais, rtol=0, atol=1e-12)


def test_kernels_and_moves_are_validated():
    with pytest.raises(ValueError, match=r"unknown kernel 'hmc'.*mala"):
        get_kernel("hmc")
    with pytest.raises(ValueError, match="unknown kernel"):
        Move("hmc")
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        Move("ula", 0.1, n_steps=0)
    with pytest.raises(ValueError, match="step_size must be a positive"):
        Move("mala", -1.0)


def test_resampling_keeps_log_z_and_records_the_genealogy():
    g = torch.Generator().manual_seed(0)
    energy = Gaussian(torch.zeros(2, dtype=D))
    walkers = start(energy, energy.sample(200, g), 1.5)
    walkers = walkers.__class__(walkers.state, torch.randn(200, generator=g, dtype=D), walkers.log_z_ref)
    before = log_z_estimate(walkers)
    out = resample(walkers, "multinomial", torch.Generator().manual_seed(1))
    assert float(log_z_estimate(out)) == pytest.approx(float(before), abs=1e-12)
    assert out.n_resamplings == 1 and out.multinomial_only
    assert torch.equal(out.x, walkers.x[out.eve])  # first resampling: the Eve is the ancestor itself
    again = resample(out, "systematic", torch.Generator().manual_seed(2))
    assert torch.equal(again.x, walkers.x[again.eve]) and not again.multinomial_only
    assert math.isnan(float(log_z_se(again)))  # the genealogy estimator assumes multinomial resampling


def test_relative_variance_before_resampling_is_the_importance_sampling_one():
    g = torch.Generator().manual_seed(0)
    energy = Gaussian(torch.zeros(2, dtype=D))
    walkers = start(energy, energy.sample(500, g))
    walkers = walkers.__class__(walkers.state, 0.7 * torch.randn(500, generator=g, dtype=D), walkers.log_z_ref)
    w = normalized_weights(walkers.log_w)
    n = 500
    assert float(log_z_relvar(walkers)) == pytest.approx(float((n * w.square().sum() - 1) / (n - 1)), rel=1e-12)
    equal = start(energy, energy.sample(500, g))
    assert float(log_z_se(equal)) == pytest.approx(0.0, abs=1e-7)  # sqrt of a rounding-level variance


def _shifting_gaussians(seed, n=2000, d=10, k_max=100, shift=3.0):
    """SMC along N(shift * t, (1 + t/2)^2 I), t = k / k_max; returns (error of log Z_hat, SE, resamplings)."""
    g = torch.Generator().manual_seed(seed)
    energy = Gaussian(torch.zeros(d, dtype=D))
    walkers = start(energy, energy.sample(n, g), float(energy.log_z().detach()))
    for k in range(1, k_max + 1):
        t = k / k_max
        with torch.no_grad():
            energy.mean.fill_(shift * t)
            energy.log_std.fill_(math.log(1 + 0.5 * t))
        walkers, _ = step(walkers, energy, Move("ula", 0.3), g, resampling=Resampling(0.5, "multinomial"))
    err = float(log_z_estimate(walkers)) - float(energy.log_z().detach())
    return err, float(log_z_se(walkers)), walkers.n_resamplings


def _check_genealogy_coverage(replicates: int, low: float, high: float) -> None:
    """|error| <= 1.96 SE in a fraction of the replicates (7-8 resamplings each) within [low, high], and
    the bias of log Z_hat + Var / 2 within 3 standard errors of 0."""
    runs = [_shifting_gaussians(seed) for seed in range(replicates)]
    assert min(r for _, _, r in runs) >= 5
    coverage = sum(abs(e) <= 1.96 * se for e, se, _ in runs) / len(runs)
    assert low <= coverage <= high, coverage
    # Z_hat is unbiased, so E[log Z_hat - log Z] = -Var(log Z_hat) / 2 to leading order
    errors = torch.tensor([e + se**2 / 2 for e, se, _ in runs], dtype=D)
    assert abs(float(errors.mean())) < 3 * float(errors.std()) / math.sqrt(len(runs))


def test_genealogy_standard_error_covers_across_resamplings():
    """50 replicates: coverage within 3 binomial standard errors (0.031) of the nominal 0.95; the SE from
    the current weights alone would cover far less after resampling.  200 replicates: the slow test below."""
    _check_genealogy_coverage(50, 0.95 - 3 * math.sqrt(0.95 * 0.05 / 50), 1.0)


@pytest.mark.slow
def test_genealogy_standard_error_covers_across_resamplings_200_replicates():
    """200 replicates: |error| <= 1.96 SE in 90-98% of them (measured 95%)."""
    _check_genealogy_coverage(200, 0.90, 0.98)


@pytest.mark.parametrize("kernel", ["ula", "mala"])
def test_ais_is_the_engine_over_a_geometric_path_with_optional_resampling(kernel):
    """N(0, I) -> N(1.5, 0.7^2 I) in d = 5: log Z within 3 SE with and without resampling."""
    from ebmlab.estimators import ais

    d = 5
    start_e, target = Gaussian(torch.zeros(d, dtype=D)), Gaussian(torch.full((d,), 1.5, dtype=D), 0.7)
    exact = float(target.log_z().detach())
    for threshold in (None, 0.5):
        g = torch.Generator().manual_seed(3)
        est = ais(
            start_e,
            target,
            start_e.sample(2000, g),
            float(start_e.log_z().detach()),
            40,
            move=Move(kernel, 0.05, n_steps=2),
            generator=g,
            ess_threshold=threshold,
        )
        assert abs(float(est.log_z) - exact) < 3 * float(est.se), (threshold, float(est.log_z), exact, float(est.se))
        assert (est.diagnostics["n_resamplings"] > 0) == (threshold is not None)
