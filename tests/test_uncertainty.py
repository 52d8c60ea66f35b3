"""The one standard-error convention (ebmlab.uncertainty) in every estimator, Pareto k-hat's edge cases, the
recorded likelihood settings, and a collapsed walker genealogy reported as unreliable."""

import math
import warnings

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.estimators import ESTIMATORS, GaussianNoise, Problem, ais, pareto_khat, rlr
from ebmlab.estimators.estimate import log_mean_relvar
from ebmlab.latent.likelihood import LikelihoodConfig, stratified_log_marginal
from ebmlab.sampling import smc
from ebmlab.sampling.kernels import Move
from ebmlab.sampling.walkers import log_z_relvar, log_z_se
from ebmlab.training import Trainer, negative_phase
from ebmlab.uncertainty import (
    GENEALOGY_SE_CEILING,
    EstimatorWarning,
    collapse_reason,
    jensen_bias,
    reliability,
    se_from_relvar,
)

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SIG = torch.tensor([0.7, 1.3], dtype=torch.float64)


def log_phi(x):
    return -0.5 * (((x - MU) / SIG) ** 2).sum(-1)


def problem(seed=0, n1=300, n2=400):
    g = torch.Generator().manual_seed(seed)
    q = GaussianNoise(torch.zeros(2, dtype=torch.float64), 2.0)
    x = MU + SIG * torch.randn(n1, 2, generator=g, dtype=torch.float64)
    return Problem(log_phi, [q], x=x, y=q.sample(n2, g), generator=g)


def test_se_from_relvar_is_log_normal_sd_and_first_order_delta_method():
    v = torch.tensor([0.0, 1e-6, 0.25, 1.0, math.inf, -1e-18], dtype=torch.float64)
    se = se_from_relvar(v)
    assert torch.allclose(se[:4], torch.log1p(v[:4]).sqrt()) and se[4] == math.inf and se[5] == 0
    assert abs(float(se[1]) / 1e-3 - 1) < 1e-6  # = sqrt(v) to first order
    assert float(se_from_relvar(torch.tensor(1.0))) == pytest.approx(GENEALOGY_SE_CEILING)
    # log-normal Z_hat: E[log Z_hat] = log E[Z_hat] - s^2/2 with s^2 = log(1 + relvar)
    assert float(jensen_bias(se[2])) == pytest.approx(-0.5 * math.log1p(0.25))


def test_every_estimator_states_its_se_by_the_one_convention():
    """IS, RIS, bridge and MIS: se^2 = log1p of the stratified relative variance of their terms; RLR:
    log1p of the diagonal of its covariance; AIS: log1p of the genealogy relative variance."""
    p = problem()
    l_y = p.log_phi_y - p.log_psi_y
    _, relvar_y, _ = log_mean_relvar(l_y)
    assert torch.allclose(ESTIMATORS["is"](p).se, se_from_relvar(relvar_y), rtol=1e-12)
    _, relvar_x, _ = log_mean_relvar(-(p.log_phi_x - p.log_psi_x))
    assert torch.allclose(ESTIMATORS["ris"](p).se, se_from_relvar(relvar_x), rtol=1e-12)
    _, v_num, _ = log_mean_relvar(0.5 * l_y)
    _, v_den, _ = log_mean_relvar(-0.5 * (p.log_phi_x - p.log_psi_x))
    assert torch.allclose(ESTIMATORS["bridge-geometric"](p).se, se_from_relvar(v_num + v_den), rtol=1e-12)
    assert torch.allclose(ESTIMATORS["mis-standard"](p).se, se_from_relvar(relvar_y), rtol=1e-12)
    lq = torch.stack([torch.cat([p.log_phi_x, p.log_phi_y]), torch.cat([p.log_psi_x, p.log_psi_y])])
    full = rlr(lq, [300, 400], {1: 0.0})
    assert torch.allclose(full.se[0], se_from_relvar(full.cov[0, 0]), rtol=1e-12)
    # the latent IS log-likelihood and the walkers (AIS, training) use the same map
    # one stratum: the latent IS log-likelihood's SE is the IS one
    one = stratified_log_marginal(p.log_phi_y.unsqueeze(0), p.log_psi_y[None, :, None], 1)
    assert torch.allclose(one.se[0], se_from_relvar(relvar_y), rtol=1e-12)


def test_ais_se_is_the_convention_applied_to_its_final_weights():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    est = ais(lambda z: 0.5 * z.square().sum(1), lambda z: -log_phi(z), x, 0.0, 10, move=Move("mala", 0.3), generator=g)
    _, relvar, _ = log_mean_relvar(est.diagnostics["log_w"])  # no resampling: the IS relative variance
    assert torch.allclose(est.se, se_from_relvar(relvar), rtol=1e-10)


def test_walkers_se_is_the_convention_applied_to_the_genealogy_relvar():
    g = torch.Generator().manual_seed(3)
    w = smc.start(lambda z: 0.5 * z.square().sum(1), torch.randn(50, 2, generator=g, dtype=torch.float64))
    assert torch.allclose(log_z_se(w), se_from_relvar(log_z_relvar(w)))


def test_pareto_khat_edge_cases_are_defined():
    n = 100
    assert float(pareto_khat(torch.zeros(n))) == -math.inf  # equal weights: bounded, no tail
    mostly_zero = torch.full((n,), -math.inf, dtype=torch.float64)
    mostly_zero[:5] = torch.randn(5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(pareto_khat(mostly_zero)) == math.inf  # 95% zero weights: fewer draws than the tail needs
    assert float(pareto_khat(torch.full((n,), -math.inf))) == math.inf
    nan = torch.zeros(n)
    nan[3] = math.nan
    assert math.isnan(float(pareto_khat(nan)))
    assert math.isnan(float(pareto_khat(torch.zeros(9))))
    # batched: the edge cases do not leak into a regular row; a Cauchy tail (k = 1) reads > 0.7
    g = torch.Generator().manual_seed(4)
    cauchy = torch.tan(math.pi * (torch.rand(4000, generator=g, dtype=torch.float64) - 0.5)).abs().log()
    rows = torch.stack([torch.zeros(4000, dtype=torch.float64), cauchy.double()])
    k = pareto_khat(rows)
    assert float(k[0]) == -math.inf and 0.7 < float(k[1]) < 1.3
    lognormal = torch.randn(4000, generator=g, dtype=torch.float64) * 0.5
    assert float(pareto_khat(lognormal)) < 0.5


def test_likelihood_records_the_draws_that_run():
    cfg = LikelihoodConfig(n_samples=264)
    assert cfg.n_draws(8) == 261 and cfg.n_components(8) == 9
    assert LikelihoodConfig(n_samples=264, defensive=False).n_draws(8) == 264
    from ebmlab.experiments.latent.config import PRESETS

    for p in PRESETS.values():  # every preset runs the draws it names
        assert p.loglik.proposal.n_draws(p.loglik.starts) == p.loglik.proposal.n_samples


def _pcd_run(lr, log_z_walkers, iters=100):
    """PCD on a Gaussian whose mean moves from 0 towards data at 4: the estimator population (from the initial
    model, short ULA steps) lags behind a fast-moving model and collapses; a slow model it follows."""
    energy = Gaussian(torch.zeros(2, dtype=torch.float64), learn_std=False)
    data = 4 + torch.randn(200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    opt = torch.optim.SGD(energy.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    trainer = Trainer(
        energy, data, opt, negative_phase("pcd", move=Move(step_size=0.05)), n_walkers=32, generator=gen,
        log_z_walkers=log_z_walkers,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.run(iters)
    return trainer, [w for w in caught if issubclass(w.category, EstimatorWarning)]


def test_a_collapsed_estimator_population_is_marked_unreliable_and_warns():
    trainer, caught = _pcd_run(0.1, 8)
    s = trainer.summary()
    assert trainer.estimator.eve.unique().numel() == 1 and s["log_z_se"] == pytest.approx(GENEALOGY_SE_CEILING)
    assert abs(s["log_z_est"] - s["log_z_exact"]) > 5  # the "value" is far off: it must not read as one
    assert s["log_z_reliable"] is False and "log_z_walkers" in s["log_z_unreliable_reason"]
    assert len(caught) == 1 and "genealogy has collapsed" in str(caught[0].message)
    assert trainer.history[-1]["log_z_reliable"] is False and "log_z_unreliable_reason" not in trainer.history[-1]
    ok, quiet = _pcd_run(0.002, 64)
    s = ok.summary()
    assert s["log_z_reliable"] is True and "log_z_unreliable_reason" not in s and not quiet
    assert abs(s["log_z_est"] - s["log_z_exact"]) < 4 * s["log_z_se"]


def test_collapse_reason_rules():
    assert collapse_reason(0.5) is None and collapse_reason(math.nan) is None and collapse_reason(None) is None
    assert collapse_reason(0.97 * GENEALOGY_SE_CEILING) is not None
    rep = reliability({"log_z_est": 1.0, "log_z_se": 0.83, "log_z_est_coupled": 0.0, "log_z_se_coupled": 0.1})
    assert rep["log_z_reliable"] is False and rep["log_z_reliable_coupled"] is True
    assert "the estimator population" in rep["log_z_unreliable_reason"]


def _calibrated(err: torch.Tensor, se: torch.Tensor) -> float:
    """sd(error) / rms(SE) over replicates: 1 when the SEs describe the spread."""
    return float(err.std() / se.square().mean().sqrt())


def test_is_se_is_calibrated_over_400_replicates():
    """IS with a wider Gaussian proposal on the 2-D closed form, 400 replicates of 300 draws (measured 0.97)."""
    g = torch.Generator().manual_seed(10)
    q = GaussianNoise(torch.zeros(2, dtype=torch.float64), 2.0)
    y = q.sample(400 * 300, g).reshape(400, 300, 2)
    est = ESTIMATORS["is"](Problem(log_phi, [q], y=y))
    log_z = math.log(2 * math.pi) + float(SIG.log().sum())
    assert 0.7 < _calibrated(est.log_z - log_z, est.se) < 1.5


def test_plain_ais_se_is_calibrated_over_100_replicates():
    """N(0, I) -> N(0.5, 0.6^2 I) in d = 3, 200 walkers, 10 MALA temperatures, no resampling (measured 0.97)."""
    g = torch.Generator().manual_seed(11)
    d, s = 3, 0.6
    exact = 0.5 * d * math.log(2 * math.pi) + d * math.log(s)
    errs, ses = [], []
    for _ in range(100):
        x = torch.randn(200, d, generator=g, dtype=torch.float64)
        est = ais(
            lambda z: 0.5 * z.square().sum(1),
            lambda z: 0.5 * ((z - 0.5) / s).square().sum(1),
            x,
            0.5 * d * math.log(2 * math.pi),
            10,
            move=Move("mala", 0.2),
            generator=g,
        )
        errs.append(float(est.log_z) - exact)
        ses.append(float(est.se))
    assert 0.7 < _calibrated(torch.tensor(errs), torch.tensor(ses)) < 1.5


@pytest.mark.slow
def test_running_log_z_se_is_calibrated_over_seeds():
    """The trainer's running log Z (estimator population, genealogy SE) while a Gaussian learns its mean and scale:
    over 30 seeds, sd(error) / rms(SE) in [0.7, 1.5] at the end of 60 Jarzynski updates (measured 1.03)."""
    errs, ses = [], []
    for seed in range(30):
        energy = Gaussian(torch.zeros(2, dtype=torch.float64))
        data = torch.tensor([1.0, -0.5], dtype=torch.float64) + 0.8 * torch.randn(
            500, 2, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64
        )
        trainer = Trainer(
            energy, data, torch.optim.SGD(energy.parameters(), lr=0.05),
            negative_phase("jarzynski", move=Move(step_size=0.05)), n_walkers=200,
            generator=torch.Generator().manual_seed(seed), log_z_walkers=200,
        )  # fmt: skip
        trainer.run(60)
        s = trainer.summary()
        errs.append(s["log_z_est"] - s["log_z_exact"])
        ses.append(s["log_z_se"])
    assert 0.7 < _calibrated(torch.tensor(errs), torch.tensor(ses)) < 1.5
