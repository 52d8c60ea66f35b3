"""Jarzynski-weighted prior walkers and the test log-likelihood on closed forms: a linear-Gaussian generator
with a Gaussian prior N(m, s^2 I), i.e. E(z) = |z - m|^2 / (2 s^2) - |z|^2 / 2 and log Z = d log s (relative
to N(0, I)); p(x) = N(x; W m + b, sigma^2 I + s^2 W W^T).  Tolerances are multiples of standard errors."""

import copy
import math

import pytest
import torch
from torch import nn

from ebmlab.latent import (
    ChainConfig,
    EvidenceConfig,
    JarzynskiPriorSampler,
    LatentEBMPrior,
    LatentModel,
    LatentTrainer,
    LEBMSampler,
    LoopConfig,
    MLPGenerator,
    WeightedPriorConfig,
    loglik_metrics,
    z_score,
)
from ebmlab.latent.likelihood import (
    LikelihoodConfig,
    ais_log_marginal,
    combine,
    importance_log_marginal,
    prior_log_z_ais,
)
from ebmlab.sampling.smc import Move
from ebmlab.sampling.tempering import Tempering

D = 2


class ShiftScalePrior(nn.Module):
    """p(z) = N(m, s^2 I) as an EBM relative to N(0, I); E = 0 exactly at m = 0, s = 1."""

    def __init__(self, d: int = D):
        super().__init__()
        self.latent_dim = d
        self.m = nn.Parameter(torch.zeros(d, dtype=torch.float64))
        self.log_s = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def energy(self, z):
        return (z - self.m).square().sum(1) / (2 * torch.exp(2 * self.log_s)) - 0.5 * z.square().sum(1)

    def forward(self, z):
        return self.energy(z) + 0.5 * z.square().sum(1)

    def set(self, m, s):
        with torch.no_grad():
            self.m.copy_(torch.as_tensor(m, dtype=torch.float64))
            self.log_s.fill_(math.log(s))


def linear_model(sigma=0.5):
    gen = MLPGenerator(D, 3, hidden=())
    with torch.no_grad():
        gen.net[0].weight.copy_(torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -0.4]]))
        gen.net[0].bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return LatentModel(gen.double(), ShiftScalePrior(), sigma)


def exact_log_marginal(model, x, m, s):
    w, b = model.generator.net[0].weight.detach(), model.generator.net[0].bias.detach()
    cov = model.sigma**2 * torch.eye(3, dtype=torch.float64) + s**2 * w @ w.T
    return torch.distributions.MultivariateNormal(w @ torch.as_tensor(m, dtype=torch.float64) + b, cov).log_prob(x)


PATH = [((0.3 * t, -0.2 * t), 1 + 0.4 * t) for t in torch.linspace(0, 1, 25).tolist()]


@pytest.mark.parametrize("kernel", ["mala", "ula"])
def test_weighted_prior_walkers_follow_a_prescribed_path(kernel):
    """Along a fixed path N(0, I) -> N(m, s^2 I) the weighted walkers give the prior expectations (mean, E[z^2],
    E[E_alpha], the term of L_E) and the estimator population log Z = d log s, within standard errors."""
    model = linear_model()
    cfg = WeightedPriorConfig(n_walkers=4000, log_z_walkers=4000, move=Move(kernel, 0.08, n_steps=3))
    sampler = JarzynskiPriorSampler(LEBMSampler(ChainConfig(post_steps=1)), cfg)
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 3, dtype=torch.float64)
    for m, s in PATH:
        model.prior.set(m, s)
        _, z = sampler.training_chains(model, x, g)
    w = sampler.prior_weights()
    ess = 1 / float(w.square().sum())
    m, s = PATH[-1]
    mean = (w[:, None] * z).sum(0)
    se_mean = s / math.sqrt(ess)
    assert torch.allclose(mean, torch.tensor(m, dtype=torch.float64), atol=5 * se_mean)
    second = (w[:, None] * (z - mean).square()).sum(0)
    assert torch.allclose(second, torch.full((D,), s**2, dtype=torch.float64), atol=5 * s**2 * math.sqrt(2 / ess))
    with torch.no_grad():
        e = model.prior.energy(z)
    exact_e = D / 2 - (D * s**2 + sum(v * v for v in m)) / 2
    assert abs(float((w * e).sum()) - exact_e) < 5 * float(e.std()) / math.sqrt(ess)
    log_z, se = sampler.log_z(model)
    assert 0 < se < 0.05
    assert abs(log_z - D * math.log(s)) < 4 * se + 1e-3
    if kernel == "ula":  # unweighted ULA walkers would carry the O(h) bias; the weights remove it
        assert abs(float(z.var(0).mean()) - s**2) > abs(float(second.mean()) - s**2)


def test_reweighting_after_the_last_update_and_generation():
    """log_z and generate use the prior after the last update (the walkers were taken to the one before)."""
    model = linear_model()
    sampler = JarzynskiPriorSampler(LEBMSampler(ChainConfig(post_steps=1)), WeightedPriorConfig(2000, 2000))
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(2, 3, dtype=torch.float64)
    sampler.training_chains(model, x, g)
    model.prior.set((0.2, 0.0), 1.1)  # an update the walkers have not seen
    log_z, se = sampler.log_z(model)
    assert abs(log_z - D * math.log(1.1)) < 4 * se + 1e-3
    z = sampler.generate(model, 3000, g)
    assert z.shape == (3000, D)
    assert abs(float(z[:, 0].mean()) - 0.2) < 5 * 1.1 / math.sqrt(1500)


def test_importance_log_likelihood_matches_closed_form():
    """IS with the Student-t Laplace proposal (which ignores the prior's curvature, so the weights vary)
    equals the closed-form log p~(x) = log p(x) + log Z within SE; the AIS check agrees too."""
    model = linear_model()
    m, s = (0.4, -0.3), 1.5
    model.prior.set(m, s)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    exact = exact_log_marginal(model, x, m, s) + D * math.log(s)
    r = importance_log_marginal(model, x, torch.zeros(6, 2, D, dtype=torch.float64), LikelihoodConfig(402), g)
    est, se = r.log_z, r.se
    assert bool((se > 1e-4).all())  # a non-trivial check: the weights are not constant
    assert bool(((est - exact).abs() < 4 * se + 1e-3).all())
    ais_est, ais_se, diag = ais_log_marginal(model, x, 200, Tempering(cess_target=0.9), 3, g)
    assert 0.4 < diag["acceptance"] < 0.9 and len(diag["temperatures"]) == 6
    assert bool(((ais_est - exact).abs() < 4 * ais_se + 2e-3).all())
    log_z = prior_log_z_ais(model, 2000, 3, g, Tempering(pilot_steps=1))
    assert abs(float(log_z.log_z) - D * math.log(s)) < 4 * float(log_z.se) + 1e-3
    out = combine(est, se, float(log_z.log_z), float(log_z.se))
    assert abs(out["loglik"] - float(exact_log_marginal(model, x, m, s).mean())) < 4 * out["loglik_se"] + 1e-3


def test_importance_log_likelihood_and_ais_check_match_closed_form_in_16_dimensions():
    """The proposal's density (Student-t normaliser, Gauss-Newton covariance, mixture) is right beyond 2-D, and
    so is the AIS check on a posterior as ill-conditioned as the trained MNIST models' (standard deviations 0.05
    to 0.7): a linear-Gaussian generator with 16 latents and 40 observed dimensions, both within SE of the
    closed form."""
    d, dx = 16, 40
    g = torch.Generator().manual_seed(2)
    gen = MLPGenerator(d, dx, hidden=())
    q, _ = torch.linalg.qr(torch.randn(dx, d, generator=g, dtype=torch.float64))
    with torch.no_grad():
        gen.net[0].weight.copy_(q * torch.logspace(math.log10(0.3), math.log10(6.0), d, dtype=torch.float64))
        gen.net[0].bias.copy_(0.1 * torch.randn(dx, generator=g))
    model = LatentModel(gen.double(), ShiftScalePrior(d), 0.3)
    m, s = [0.2] * d, 1.3
    model.prior.set(m, s)
    w, b = gen.net[0].weight.detach().double(), gen.net[0].bias.detach().double()
    p_x = torch.distributions.MultivariateNormal(
        w @ torch.tensor(m, dtype=torch.float64) + b, 0.09 * torch.eye(dx, dtype=torch.float64) + s**2 * w @ w.T
    )
    x = p_x.mean + torch.randn(6, dx, generator=g, dtype=torch.float64) @ p_x.scale_tril.T  # seeded draws
    exact = p_x.log_prob(x) + d * math.log(s)
    r = importance_log_marginal(model, x, torch.zeros(6, 2, d, dtype=torch.float64), LikelihoodConfig(402), g)
    est, se = r.log_z, r.se
    assert bool((se > 1e-3).all())
    assert bool(((est - exact).abs() < 4 * se + 1e-3).all())
    ais_est, ais_se, _ = ais_log_marginal(model, x[:3], 64, Tempering(pilot_steps=3), 10, g)
    assert bool((ais_se > 0.02).all())
    assert bool(((ais_est - exact[:3]).abs() < 4 * ais_se).all()), (ais_est - exact[:3], ais_se)


def test_zero_init_prior_and_its_check():
    """LatentEBMPrior(zero_init_output=True) is exactly N(0, I); a prior that is not refuses to start walkers."""
    model = LatentModel(MLPGenerator(2, 3, (8,)), LatentEBMPrior(2, (8, 8), zero_init_output=True), 0.5)
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.prior.energy(z), torch.zeros(5))
    sampler = JarzynskiPriorSampler(LEBMSampler(ChainConfig(post_steps=1)), WeightedPriorConfig(4, 4))
    sampler.training_chains(model, torch.zeros(2, 3), torch.Generator().manual_seed(0))
    bad = LatentModel(MLPGenerator(2, 3, (8,)), LatentEBMPrior(2, (8, 8)), 0.5)
    fresh = JarzynskiPriorSampler(LEBMSampler(ChainConfig(post_steps=1)), WeightedPriorConfig(4, 4))
    with pytest.raises(ValueError, match="zero_init_output=True"):
        fresh.training_chains(bad, torch.zeros(2, 3), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="n_walkers"):
        WeightedPriorConfig(n_walkers=1)
    with pytest.raises(ValueError, match="unknown kernel"):
        WeightedPriorConfig(move=Move("hmc"))
    with pytest.raises(TypeError, match=r"move must be an ebmlab\.sampling\.smc\.Move"):
        WeightedPriorConfig(move="mala")
    with pytest.raises(TypeError, match="resampling must be"):
        WeightedPriorConfig(resampling=0.5)


def _trainer(seed=0):
    torch.manual_seed(seed)
    model = LatentModel(MLPGenerator(2, 3, (8,)), LatentEBMPrior(2, (8, 8), zero_init_output=True), 0.5)
    data = torch.randn(40, 3, generator=torch.Generator().manual_seed(5))
    sampler = JarzynskiPriorSampler(LEBMSampler(ChainConfig(prior_steps=2, post_steps=2)), WeightedPriorConfig(16, 16))
    cfg = LoopConfig(batch_size=8, lr_e=1e-2, decay_every=2, decay=0.5)
    return LatentTrainer(model, sampler, data, cfg, torch.Generator().manual_seed(seed))


def test_loop_uses_the_weights_and_resumes_bit_exact(tmp_path):
    """The loop's prior mean is the weighted one; a run resumed from a checkpoint equals an uninterrupted one."""
    full = _trainer()
    full.run(6)
    rows = full.history
    assert all("log_z_prior" in r and "prior_ess_frac" in r for r in rows)
    assert rows[0]["log_z_prior"] == 0.0
    part = _trainer()
    part.run(3, checkpoint_path=tmp_path / "c.pt")
    resumed = _trainer(seed=0)
    resumed.resume(tmp_path / "c.pt")
    resumed.run(6)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(full.sampler.walkers.x, resumed.sampler.walkers.x)
    assert torch.equal(full.sampler.estimator.log_w, resumed.sampler.estimator.log_w)
    assert full.history == resumed.history
    fresh = _trainer()
    fresh.run(2)
    before = copy.deepcopy(fresh.model.prior)
    row = fresh.step()
    w = fresh.sampler.prior_weights()
    assert float(w.max() / w.min()) > 1.0001  # the walkers carry unequal weights after two prior updates
    with torch.no_grad():
        e = before.energy(fresh.sampler.walkers.x)
    assert row["e_neg"] == pytest.approx(float((w * e).sum()), rel=1e-6)


def test_loglik_report_matches_the_closed_form():
    """loglik_metrics (IS from the sampler's latents, log Z_alpha by AIS, the AIS check) on the linear-Gaussian
    model: the mean test log-likelihood and log Z_alpha within 4 SE of the closed forms, and the check agrees."""
    model = linear_model()
    m, s = (0.4, -0.3), 1.5
    model.prior.set(m, s)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    cfg = EvidenceConfig(
        proposal=LikelihoodConfig(n_samples=300, newton_steps=2),
        starts=2,
        prior_walkers=1000,
        prior_steps=3,
        check_images=3,
        check_chains=100,
        check_steps=3,
        check_pilot_steps=1,
    )
    out, log_p = loglik_metrics(model, LEBMSampler(ChainConfig(post_steps=5)), x, cfg, g)
    exact = exact_log_marginal(model, x, m, s)
    assert out["loglik_se"] > 1e-4 and out["log_z_source"] == "ais" and out["loglik_is_starts"] == 2
    assert abs(out["loglik"] - float(exact.mean())) < 4 * out["loglik_se"] + 1e-3
    assert abs(out["log_z"] - D * math.log(s)) < 4 * out["log_z_se"] + 1e-3
    assert log_p.shape == (6,) and float(log_p.mean()) == pytest.approx(out["loglik"])
    check = out["loglik_ais_check"]
    assert check["n_images"] == 3 and check["agree"] and check["ais_steps"] == 3 and check["ais_pilot_steps"] == 1


def test_z_score_and_evidence_config_checks():
    assert z_score(3.0, 3.0, -1.0, 4.0) == pytest.approx(0.8)
    for fields, match in [
        (dict(starts=0), "starts must be an integer >= 1, got 0"),
        (dict(prior_steps=2.5), "prior_steps must be an integer >= 1, got 2.5"),
        (dict(check_chains=1), "check_chains must be an integer >= 2"),
        (dict(check_cess=1.0), r"check_cess must lie in \(0, 1\), got 1.0"),
    ]:
        with pytest.raises(ValueError, match=match):
            EvidenceConfig(**fields)
    with pytest.raises(TypeError, match="proposal must be a LikelihoodConfig"):
        EvidenceConfig(proposal=261)
