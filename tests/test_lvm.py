"""ebmlab.lvm: closed forms of the Gaussian model, the estimator population's evidence along a training path,
the weighted Fisher identity, batched = per-group bookkeeping, baselines, checkpoints and bad input."""

import math

import pytest
import torch

from ebmlab.lvm import (
    BayesLinearRegression,
    FitConfig,
    LatentFit,
    StudentTRegression,
    exact_whitening,
    laplace_whitening,
    polynomial_features,
    standard_normal_start,
)
from ebmlab.lvm.baselines import ml2, ols_bic
from ebmlab.lvm.groups import group_log_z, group_log_z_se, group_summary, resample_groups
from ebmlab.lvm.logistic import BayesLogistic, log_predictive
from ebmlab.sampling import smc
from ebmlab.sampling.kernels import Move
from ebmlab.sampling.walkers import Walkers, ess_fraction, log_z_estimate, log_z_se, resample

F64 = torch.float64


def regression_data(b=4, n=60, order=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(b, n, generator=g, dtype=F64) * 5 - 2.5
    phi = polynomial_features(t, order)
    w = torch.randn(b, order + 1, 1, generator=g, dtype=F64)
    y = (phi @ w).squeeze(-1) + math.sqrt(7.5) * torch.randn(b, n, generator=g, dtype=F64)
    return phi, y


THETA0 = (math.log(7.5) + 1, 1.0)


def model(b=4, seed=0, theta=THETA0):
    phi, y = regression_data(b, seed=seed)
    return BayesLinearRegression.from_data(phi, y, log_sigma2=theta[0], log_alpha=theta[1])


def evidence_at(m: BayesLinearRegression, theta: torch.Tensor) -> torch.Tensor:
    """Closed-form log evidence (B,) at theta (B, 2), the model's own theta left unchanged."""
    keep = m.theta
    with torch.no_grad():
        m.log_sigma2.copy_(theta[:, 0])
        m.log_alpha.copy_(theta[:, 1])
        out = m.log_evidence()
        m.log_sigma2.copy_(keep[:, 0])
        m.log_alpha.copy_(keep[:, 1])
    return out


def whitened_fit(m, cfg, n_walkers, seed, lr=0.05, optimizer=torch.optim.Adam):
    """A fit of ``m`` in its exactly whitened coordinates, its log Z references the closed-form evidence."""
    pot = exact_whitening(m)
    return LatentFit(
        pot,
        optimizer(pot.parameters(), lr=lr),
        n_walkers=n_walkers,
        generator=torch.Generator().manual_seed(seed),
        log_z0=m.log_evidence().detach(),
        config=cfg,
    )


def test_closed_form_evidence_and_posterior():
    m = model()
    phi, y = regression_data()
    s2, a = m.log_sigma2.exp().detach(), m.log_alpha.exp().detach()
    cov = s2[:, None, None] * torch.eye(y.shape[1], dtype=F64) + phi @ phi.transpose(1, 2) / a[:, None, None]
    ref = torch.distributions.MultivariateNormal(torch.zeros(y.shape[1], dtype=F64), cov).log_prob(y)
    assert torch.allclose(m.log_evidence().detach(), ref, rtol=0, atol=1e-8)
    mean, root, log_det = m.posterior()
    prec = a[:, None, None] * torch.eye(3, dtype=F64) + phi.transpose(1, 2) @ phi / s2[:, None, None]
    assert torch.allclose(root @ root.transpose(1, 2), torch.linalg.inv(prec), atol=1e-10)
    assert torch.allclose(
        mean, torch.linalg.solve(prec, (phi.transpose(1, 2) @ y[..., None]).squeeze(-1) / s2[:, None])
    )
    assert torch.allclose(log_det, -0.5 * torch.logdet(prec))


def test_whitened_start_is_the_posterior_with_the_same_normaliser():
    """In whitened coordinates the exact posterior at theta_0 is N(0, I): U_u(u) - |u|^2/2 is constant and
    equals -log Z + log N's constant, so importance weights from N(0, I) are all log Z_0 exactly."""
    m = model()
    pot = exact_whitening(m)
    _, log_w, ref = standard_normal_start(pot, 7, torch.Generator().manual_seed(1))
    assert torch.allclose(log_w, m.log_evidence().detach()[:, None].expand(-1, 7), atol=1e-8)
    assert torch.equal(ref, torch.zeros(4, dtype=F64))


def test_estimator_evidence_tracks_the_closed_form_along_a_training_path():
    """B = 12 fits, 30 Adam updates from theta_0 = theta* + 1: at iterations 10, 20, 30 the estimator
    population's log Z is within 3 SE of the closed form in at least 90% of (fit, iteration) pairs, and the
    standardised errors have mean square below 2 (the SE is not too small)."""
    m = model(b=12, seed=3)
    fit = whitened_fit(m, FitConfig(move=Move("ula", 1e-3)), n_walkers=200, seed=0, lr=2e-2)
    fit.run(30, progress=False)
    tr = fit.trajectory()
    z = []
    for k in (10, 20, 30):
        exact = evidence_at(m, tr["theta"][k])
        assert not torch.allclose(exact, evidence_at(m, tr["theta"][0]), atol=1.0)  # theta really moved
        z.append((tr["log_z_est"][k] - exact) / tr["log_z_se"][k])
    z = torch.cat(z)
    assert float((z.abs() < 3).double().mean()) >= 0.9, z
    assert float(z.square().mean()) < 2.0, z


def test_weighted_gradient_is_the_gradient_of_the_log_evidence():
    """After one update the reweighted walkers' -sum_i w_i dU/dtheta(X_i) equals d log p_theta(y)/dtheta
    (autograd of the closed form) within 4 of its self-normalised standard errors."""
    m = model(b=1, seed=5)
    cfg = FitConfig(move=Move("ula", 1e-2), estimator=False)
    fit = whitened_fit(m, cfg, n_walkers=4000, seed=2, lr=2e-3, optimizer=torch.optim.SGD)
    pot = fit.potential
    fit.run(3, progress=False)
    w = fit.weights()[0]
    assert float(fit.estimates()["ess_frac"][0]) < 0.999  # the weights are not uniform
    rows = []
    for i in range(fit.n_walkers):
        pot.zero_grad()
        pot(fit.latents()[:, i : i + 1]).sum().backward()
        rows.append(-torch.cat([m.log_sigma2.grad, m.log_alpha.grad]))
    g = torch.stack(rows)  # (N, 2): per-walker -dU/dtheta
    est = w @ g
    se = ((w[:, None] ** 2) * (g - est).square()).sum(0).sqrt()
    pot.zero_grad()
    m.log_evidence().sum().backward()
    exact = torch.cat([m.log_sigma2.grad, m.log_alpha.grad])
    assert torch.all((est - exact).abs() < 4 * se), (est, exact, se)


def _population(log_w: torch.Tensor, b: int) -> Walkers:
    n = log_w.numel() // b
    x = torch.randn(b * n, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    state = smc.start(lambda v: v.square().sum(1), x).state
    return Walkers(state, log_w, torch.arange(b, dtype=F64), None, torch.zeros(b, dtype=torch.long))


def test_group_bookkeeping_equals_the_engine_per_group():
    b, n = 5, 40
    log_w = 3 * torch.randn(b * n, generator=torch.Generator().manual_seed(1), dtype=F64)
    pop = _population(log_w, b)
    s = group_summary(pop, b)
    for g in range(b):
        one = Walkers(pop.state.index(torch.arange(g * n, (g + 1) * n)), log_w[g * n : (g + 1) * n], pop.log_z_ref[g])
        assert torch.allclose(s.ess_fraction[g], ess_fraction(one.log_w))
        assert torch.allclose(group_log_z(pop, s)[g], log_z_estimate(one))
        assert torch.allclose(group_log_z_se(pop, s)[g], log_z_se(one))


def test_group_resampling_equals_the_engine_per_group():
    """A group below the threshold is resampled exactly as the engine resamples it alone (same draws); the
    others are untouched; the genealogy SE after resampling matches the engine's."""
    b, n = 3, 30
    log_w = 0.3 * torch.randn(b * n, generator=torch.Generator().manual_seed(4), dtype=F64)
    log_w[n : 2 * n] *= 20  # only group 1 is degenerate
    pop = _population(log_w, b)
    out, done = resample_groups(pop, group_summary(pop, b), 0.5, "multinomial", torch.Generator().manual_seed(9))
    assert done.tolist() == [False, True, False]
    one = Walkers(pop.state.index(torch.arange(n, 2 * n)), log_w[n : 2 * n], pop.log_z_ref[1])
    ref = resample(one, "multinomial", torch.Generator().manual_seed(9))
    assert torch.equal(out.x[n : 2 * n], ref.x) and torch.equal(out.x[:n], pop.x[:n])
    s = group_summary(out, b)
    assert torch.allclose(group_log_z(out, s)[1], log_z_estimate(ref))
    assert torch.allclose(group_log_z_se(out, s)[1], log_z_se(ref))
    assert out.n_resamplings.tolist() == [0, 1, 0]


def test_batched_update_equals_unbatched_fits():
    """theta_1 and the step-0 estimates of a batched fit equal those of the B fits run one by one from the
    same walkers (the update is deterministic given the walkers and weights)."""
    m = model(b=3, seed=7)
    cfg = FitConfig(move=Move("ula", 1e-2))
    batched = whitened_fit(m, cfg, n_walkers=16, seed=0)
    x = batched.latents().clone()
    row = batched.step()
    for g in range(3):
        phi, y = regression_data(3, seed=7)
        mg = BayesLinearRegression.from_data(
            phi[g : g + 1],
            y[g : g + 1],
            log_sigma2=row["theta"][g, 0],
            log_alpha=row["theta"][g, 1],
        )
        pg = exact_whitening(mg)

        def start(n, gen, g=g, mg=mg):
            return x[g : g + 1], torch.zeros(1, n, dtype=F64), mg.log_evidence().detach()

        single = LatentFit(
            pg,
            torch.optim.Adam(pg.parameters(), lr=0.05),
            n_walkers=16,
            generator=torch.Generator(),
            config=cfg,
            start=start,
        )
        r = single.step()
        assert torch.allclose(single.theta()[0], batched.theta()[g], atol=1e-12)
        assert torch.allclose(r["log_z_coupled"][0], row["log_z_coupled"][g])


def test_resume_equals_uninterrupted(tmp_path):
    def make():
        cfg = FitConfig(move=Move("ula", 0.05), ess_threshold=0.9, estimator_threshold=0.9)
        return whitened_fit(model(b=2, seed=1), cfg, n_walkers=20, seed=3)

    full = make()
    full.run(12, progress=False)
    part = make()
    part.run(5, progress=False, checkpoint_path=tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=False)  # the layout before FitConfig took a Move
    config = state["settings"]["config"]
    move = config.pop("move")
    config.update(kernel=move["kernel"], step_size=move["step_size"])
    torch.save(state, tmp_path / "flat.pt")
    for name in ("c.pt", "flat.pt"):
        again = make()
        again.resume(tmp_path / name)
        again.run(12, progress=False)
        a, b = full.trajectory(), again.trajectory()
        assert bool(a["resampled"].any())
        for k in a.keys() - {"wall_s", "cpu_s"}:
            assert torch.equal(a[k], b[k]), k


def test_pgd_and_soul_move_theta_towards_the_ml2_optimum():
    m = model(b=2, seed=2)
    theta_hat, ev, gmax = ml2(model(b=2, seed=2))
    assert gmax < 1e-5 and bool((ev >= evidence_at(m, m.theta) - 1e-9).all())
    for method, steps in (("pgd", 1), ("soul", 3)):
        mm = model(b=2, seed=2)
        pot = exact_whitening(mm)
        cfg = FitConfig(method=method, move=Move("ula", 0.05), chain_steps=steps, estimator=False)
        fit = LatentFit(
            pot,
            torch.optim.Adam(pot.parameters(), lr=0.05),
            n_walkers=50,
            generator=torch.Generator().manual_seed(1),
            config=cfg,
        )
        fit.run(150, progress=False)
        before = (m.theta - theta_hat).abs().sum(1)
        after = (fit.theta() - theta_hat).abs().sum(1)
        assert bool((after < 0.3 * before).all()), (method, before, after)
        assert fit.estimates() == {}


def test_ols_bic_matches_the_formula():
    phi, y = regression_data(b=2, n=50, order=3)
    coef = torch.linalg.pinv(phi) @ y[..., None]
    rss = (y - (phi @ coef).squeeze(-1)).square().sum(1)
    assert torch.allclose(ols_bic(phi, y), 50 * torch.log(rss / 50) + 4 * math.log(50))


def test_laplace_whitening_and_importance_start_for_student_t():
    """The Laplace start of the Student-t model is an unbiased importance sample: log Z_0 from 4000 draws
    agrees with one from 40000 within 4 SE (the Gaussian model's exact whitening is recovered exactly)."""
    phi, y = regression_data(b=2, n=80, order=1, seed=4)
    t = StudentTRegression(phi, y, nu=4.0, log_sigma2=math.log(7.5), log_alpha=0.0)
    pot = laplace_whitening(t, torch.zeros(2, 2, dtype=F64))
    ests = []
    for n, seed in ((4000, 0), (40000, 1)):
        _, log_w, _ = standard_normal_start(pot, n, torch.Generator().manual_seed(seed))
        lme = torch.logsumexp(log_w, 1) - math.log(n)
        w = torch.softmax(log_w, 1)
        se = torch.sqrt(w.square().sum(1) - 1 / n)
        ests.append((lme, se))
    (a, sa), (b, sb) = ests
    assert torch.all((a - b).abs() < 4 * torch.sqrt(sa**2 + sb**2) + 1e-12)
    g = BayesLinearRegression.from_data(phi, y)
    lap, ex = laplace_whitening(g, torch.zeros(2, 2, dtype=F64)), exact_whitening(g)
    assert torch.allclose(lap.shift, ex.shift) and torch.allclose(lap.log_det, ex.log_det)


def test_logistic_potential_and_predictive_density():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 30, 3, generator=g, dtype=F64)
    labels = (torch.rand(2, 30, generator=g) < 0.5).long()
    m = BayesLogistic(feats, labels, prior_var=5.0, theta0=0.5)
    x = torch.randn(2, 4, 3, generator=g, dtype=F64)
    logits = torch.einsum("bnd,bjd->bnj", x, feats)
    ll = torch.distributions.Bernoulli(logits=logits).log_prob(labels[:, None].double()).sum(-1)
    prior = torch.distributions.Normal(0.5, math.sqrt(5.0)).log_prob(x).sum(-1)
    assert torch.allclose(m(x), -(ll + prior))
    w = torch.full((2, 4), 0.25, dtype=F64)
    p = torch.distributions.Bernoulli(logits=logits).log_prob(labels[:, None].double()).exp().mean(1)
    assert torch.allclose(log_predictive(x, w, feats, labels), p.log().mean(1))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FitConfig(method="em"), "unknown method"),
        (lambda: FitConfig(chain_steps=3), "chain_steps applies to soul"),
        (lambda: FitConfig(move=Move("ula", -1.0)), "step_size"),
        (lambda: FitConfig(ess_threshold=1.5), "ess_threshold"),
        (lambda: polynomial_features(torch.zeros(3), -1), "order"),
        (lambda: BayesLinearRegression.from_data(torch.zeros(2, 5, 3), torch.zeros(2, 5)), "float64"),
        (
            lambda: BayesLinearRegression.from_data(torch.zeros(2, 5, 3, dtype=F64), torch.zeros(2, 4, dtype=F64)),
            "disagree",
        ),
        (lambda: StudentTRegression(torch.zeros(1, 5, 2, dtype=F64), torch.zeros(1, 5, dtype=F64), nu=0.0), "nu"),
        (lambda: BayesLogistic(torch.zeros(1, 5, 2, dtype=F64), torch.full((1, 5), 2)), "labels"),
        (lambda: BayesLinearRegression.from_data(*regression_data(2), log_alpha=torch.zeros(3)), "log_alpha"),
    ],
)
def test_bad_input_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_fit_config_takes_a_move():
    with pytest.raises(TypeError, match="move must be a Move"):
        FitConfig(move="ula")


def test_bad_fit_inputs_are_refused():
    m = model(b=2)
    pot = exact_whitening(m)
    opt = torch.optim.Adam(pot.parameters())
    with pytest.raises(TypeError, match="FitConfig"):
        LatentFit(pot, opt, n_walkers=4, generator=torch.Generator(), config={"method": "jala"})
    with pytest.raises(ValueError, match="log_z0 must be"):
        LatentFit(pot, opt, n_walkers=4, generator=torch.Generator(), log_z0=torch.zeros(3))
    with pytest.raises(ValueError, match="n_walkers"):
        LatentFit(pot, opt, n_walkers=1, generator=torch.Generator())

    def bad_start(n, g):
        return torch.zeros(2, n + 1, 3, dtype=F64), torch.zeros(2, n, dtype=F64), torch.zeros(2, dtype=F64)

    with pytest.raises(ValueError, match="initial sampler"):
        LatentFit(pot, opt, n_walkers=4, generator=torch.Generator(), start=bad_start)
    pot.register_parameter("extra", torch.nn.Parameter(torch.zeros(5)))
    with pytest.raises(ValueError, match="leading group dimension"):
        LatentFit(pot, opt, n_walkers=4, generator=torch.Generator())


def test_mala_moves_keep_the_evidence_and_resample_per_group():
    """With MALA moves (only the AIS work enters the weights) and resampling of both populations, the
    estimator population's evidence after 20 updates is within 4 SE of the closed form for each of 6 fits."""
    m = model(b=6, seed=11)
    cfg = FitConfig(move=Move("mala", 0.3), ess_threshold=0.7, estimator_threshold=0.7)
    fit = whitened_fit(m, cfg, n_walkers=400, seed=5)
    fit.run(20, progress=False)
    est = fit.estimates()
    assert int(fit.estimator.n_resamplings.sum()) > 0 and bool(fit.trajectory()["resampled"].any())
    exact = m.log_evidence().detach()
    assert torch.all((est["log_z_est"] - exact).abs() < 4 * est["log_z_se"]), (est["log_z_est"], exact)
