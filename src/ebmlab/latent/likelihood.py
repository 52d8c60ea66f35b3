"""Test log-likelihood of a latent EBM: log p(x) = log int p_beta(x | z) p_alpha(z) dz, in nats per image.

With p_alpha(z) = exp(-E_alpha(z)) N(z; 0, I) / Z_alpha and p_beta(x | z) = N(x; g(z), sigma^2 I),

    log p(x) = log p~(x) - log Z_alpha,   p~(x) = int N(x; g(z), sigma^2 I) exp(-E_alpha(z)) N(z; 0, I) dz,

and log Z_alpha (relative to N(0, I)) comes from the Jarzynski walkers' estimator population or from AIS
from N(0, I) (:func:`prior_log_z_ais`).

p~(x) by importance sampling (:func:`importance_log_marginal`): the proposal is an equal-weight mixture
of multivariate Student-t components, one per posterior latent the sampler gives for x (M starts), each
centred at the posterior mode found from its start (a few Gauss-Newton steps on U_post) with scale matrix
the inverse Gauss-Newton precision H = J^T J / sigma^2 + I (J = dg/dz at the mode; E_alpha's curvature left
out), plus a defensive N(0, I) component; draws are split equally over the components and weighted by the
mixture density (deterministic-mixture multiple importance sampling).  Why: the density is exact and cheap;
the Laplace shape fits a posterior that many pixels make sharp and nearly Gaussian; several starts cover
several posterior modes (one Laplace component misses modes: 2 nats low on the 2-D toy); and polynomial
tails dominate the posterior's Gaussian tails, so the weights p/q stay bounded far out and their variance
finite where a Laplace covariance is too narrow (:mod:`.laplace_proposal`).

Uncertainty.  The estimator of p~(x) is unbiased; the draws are stratified (equal numbers per component), so
its variance is the stratified one (within-component variances), not that of i.i.d. mixture draws.  Its log is
biased low by about se^2 / 2 (the Jensen bias of :mod:`ebmlab.uncertainty`); averaged over test images these
biases add up with one sign while the SE of the mean shrinks like 1/sqrt(n), so :func:`combine` reports the bias
and a bias-corrected value beside the raw one.  The SE is noise only and conditional on the proposal covering
the posterior: a mode that no start finds is missed with a small SE.  The diagnostics say when that is likely:
Pareto k-hat of the weights (> 0.7) and a test that the starts' own estimates agree within their SEs.

:func:`ais_log_marginal` is the independent check: per image, AIS from N(0, I) along the geometric path to
the unnormalised posterior, an SMC sampler (resampling, preconditioned MALA) on a schedule that a pilot run
adapts (:class:`~ebmlab.sampling.tempering.Tempering`).  On trained MNIST models plain AIS with a fixed step was 25
to 45 nats below IS: its chains, isotropic in an ill-conditioned posterior (standard deviations 0.05 to 0.7),
barely moved along the wide directions.  The adapted sampler agrees with IS within a standard error there,
and with the closed form on a linear-Gaussian model of the same conditioning.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor

from ..estimators.ais import ais
from ..estimators.diagnostics import pareto_khat
from ..estimators.estimate import Estimate, log_mean_relvar
from ..sampling.kernels import Move
from ..sampling.langevin import EnergyFn
from ..sampling.tempering import Tempering
from ..uncertainty import jensen_bias, se_from_relvar
from .laplace_proposal import LikelihoodConfig, mixture_draws, posterior_mode
from .models import LatentModel

__all__ = [
    "LikelihoodConfig",
    "ais_log_marginal",
    "combine",
    "importance_log_marginal",
    "prior_log_z_ais",
    "stratified_log_marginal",
]


def check_images(model: LatentModel, x: Tensor) -> None:
    """Raise ValueError unless ``x`` holds finite observations of the model's shape (a NaN pixel would make
    that image's log-likelihood NaN)."""
    model.check_x(x)
    bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
    if bad:
        raise ValueError(f"{bad} of the {x.shape[0]} images contain NaN or infinite values; clean them first")


def gaussian_log_norm(dim: int, sigma: float) -> float:
    """log of the normaliser of N(x; mu, sigma^2 I) in ``dim`` dimensions, -(dim/2) log(2 pi sigma^2), nats."""
    return -0.5 * dim * math.log(2 * math.pi * sigma**2)


def log_gaussian_likelihood(model: LatentModel, x: Tensor, z: Tensor) -> Tensor:
    """log N(x; g(z), sigma^2 I) (N,) in nats, x (N, *x_shape), z (N, d)."""
    return -model.sse(x, z).double() / (2 * model.sigma**2) + gaussian_log_norm(x[0].numel(), model.sigma)


def log_unnormalised_joint(model: LatentModel, x: Tensor, z: Tensor) -> Tensor:
    """log N(x; g(z), sigma^2 I) - E_alpha(z) + log N(z; 0, I), (N,) float64 nats (no log Z_alpha)."""
    d = z.shape[1]
    log_n = -0.5 * z.double().square().sum(1) - 0.5 * d * math.log(2 * math.pi)
    return log_gaussian_likelihood(model, x, z) - model.prior.energy(z).double() + log_n


def importance_log_marginal(
    model: LatentModel, x: Tensor, z_starts: Tensor, config: LikelihoodConfig, generator: torch.Generator
) -> Estimate:
    """Importance-sampling estimate of log p~(x) per image (see the module docstring): an :class:`Estimate` with
    log_z and se (N,) float64 nats, ess (N,) and the diagnostics of :func:`stratified_log_marginal`; x (N, *x_shape),
    z_starts (N, M, d) M latents per image from the sampler (the mode searches' starts: one Student-t component
    each).  The SE is noise only, conditional on the proposal covering the posterior; log_z is biased low by about
    se^2 / 2 (:func:`ebmlab.uncertainty.jensen_bias`)."""
    check_images(model, x)
    if z_starts.dim() != 3 or z_starts.shape[0] != x.shape[0] or z_starts.shape[2] != model.latent_dim:
        raise ValueError(f"z_starts must have shape ({x.shape[0]}, M, {model.latent_dim}), got {tuple(z_starts.shape)}")
    n_comp = config.n_components(z_starts.shape[1])
    if config.n_samples < n_comp:
        raise ValueError(f"n_samples={config.n_samples} is below the number of proposal components ({n_comp})")
    parts = []
    for i in range(0, x.shape[0], config.batch):
        xb, starts = x[i : i + config.batch], z_starts[i : i + config.batch]
        b, m, d = starts.shape
        mu, chol = posterior_mode(model, xb.repeat_interleave(m, 0), starts.reshape(b * m, d), config.newton_steps)
        z, log_q = mixture_draws(mu.reshape(b, m, d), chol.reshape(b, m, d, d), config, generator)
        k = z.shape[1]
        with torch.no_grad():
            log_p = log_unnormalised_joint(model, xb.repeat_interleave(k, 0), z.reshape(-1, d)).reshape(b, k)
        parts.append(stratified_log_marginal(log_p, log_q, m))
    diagnostics = {key: torch.cat([e.diagnostics[key] for e in parts]) for key in parts[0].diagnostics}
    return Estimate(
        log_z=torch.cat([e.log_z for e in parts]),
        se=torch.cat([e.se for e in parts]),
        method="is-student-t-mixture",
        ess=torch.cat([cast(Tensor, e.ess) for e in parts]),  # stratified_log_marginal sets it
        diagnostics=diagnostics | {"n_draws": config.n_draws(z_starts.shape[1])},
    )


def stratified_log_marginal(log_p: Tensor, log_q: Tensor, n_starts: int) -> Estimate:
    """Deterministic-mixture IS estimate of log p~(x) from stratified draws, per image.

    log_p: (N, k) log unnormalised joint at the draws; log_q: (N, k, C) every component's log density at every
    draw, the draws in C equal strata by component (:func:`~.laplace_proposal.mixture_draws`), the first
    ``n_starts`` components the Student-t ones.  log_z = logmeanexp(log p - log psi), psi the equal-weight
    mixture; its relative variance is the stratified one, sum_c var_c / (C^2 k/C) with within-stratum variances
    (the draws are not i.i.d. from psi: treating them so overstates the variance when the proposal is good).
    se by :func:`ebmlab.uncertainty.se_from_relvar`; ess: Kish ESS of the weights.  Diagnostics (N,):
    ``pareto_khat`` of the weights (> 0.7: unreliable), ``max_weight`` (largest normalised weight) and
    ``start_p_value``: a chi-square test (M - 1 degrees of freedom) that the M starts' own IS estimates (stratum c
    weighted by q_c alone, each unbiased) agree within their SEs; a small value means the starts found different
    posterior regions that the mixture may still weigh wrongly (NaN with one start)."""
    k, c = log_q.shape[1:]
    log_w = log_p - (torch.logsumexp(log_q, 2) - math.log(c))
    log_mean, relvar, ess = log_mean_relvar(log_w, [k // c] * c)
    own = torch.stack([log_p[:, j * (k // c) : (j + 1) * (k // c)] - log_q[:, j * (k // c) : (j + 1) * (k // c), j]
                       for j in range(n_starts)], 1)  # fmt: skip
    start_mean, start_relvar, _ = log_mean_relvar(own)
    return Estimate(
        log_z=log_mean,
        se=se_from_relvar(relvar),
        method="is-student-t-mixture",
        ess=ess,
        diagnostics={
            "pareto_khat": pareto_khat(log_w),
            "max_weight": torch.softmax(log_w, 1).amax(1),
            "start_p_value": _agreement_p_value(start_mean, se_from_relvar(start_relvar)),
        },
    )


def _agreement_p_value(mean: Tensor, se: Tensor) -> Tensor:
    """P(chi2_(M-1) >= Q), Q = sum_j (m_j - m_bar)^2 / se_j^2 with m_bar the inverse-variance mean, per row of
    (N, M) independent estimates; NaN for M < 2; 0 where estimates differ with a zero SE."""
    m = mean.shape[1]
    if m < 2:
        return torch.full(mean.shape[:1], math.nan, dtype=torch.float64, device=mean.device)
    prec = se.clamp_min(1e-12).square().reciprocal()  # finite weights where a stratum's draws were all equal
    m_bar = (prec * mean).sum(1, keepdim=True) / prec.sum(1, keepdim=True)
    q = (prec * (mean - m_bar).square()).sum(1)
    return torch.special.gammaincc(torch.tensor((m - 1) / 2, dtype=torch.float64), q / 2)


def _standard_normal_energy(z: Tensor) -> Tensor:
    """|z|^2 / 2, (N,) nats: the energy of N(0, I) without its normaliser."""
    return 0.5 * z.square().sum(1)


def _tempered_from_standard_normal(
    model: LatentModel,
    energy: EnergyFn,
    n: int,
    tempering: Tempering,
    n_steps: int,
    generator: torch.Generator,
    step_size: float,
) -> Estimate:
    """log E_N(0,I)[exp(-(energy(z) - |z|^2/2))], nats: tempered SMC (preconditioned MALA, ``n_steps`` steps per
    temperature, multinomial resampling at ESS/N < 0.5) of ``n`` exact N(0, I) draws to exp(-energy), on a
    schedule adapted by a pilot population of ``n`` independent draws (``step_size``: the pilot's first)."""
    p = next(model.parameters())
    z = torch.randn(2, n, model.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
    # log_z0 = 0: the estimate is log(Z_1 / Z_0), Z_0 that of exp(-|z|^2/2)
    return ais(
        _standard_normal_energy,
        energy,
        z[0],
        0.0,
        tempering,
        move=Move("mala", step_size, n_steps=n_steps),
        generator=generator,
        ess_threshold=0.5,
        pilot=z[1],
    )


def prior_log_z_ais(
    model: LatentModel, n_walkers: int, n_steps: int, generator: torch.Generator, tempering: Tempering
) -> Estimate:
    """log Z_alpha relative to N(0, I), nats: log E_N(0,I)[exp(-E_alpha)] by tempered SMC of ``n_walkers``
    walkers to exp(-U_prior) (:func:`_tempered_from_standard_normal`; why an adapted schedule and not a fixed
    one: docs/latent.md)."""
    return _tempered_from_standard_normal(model, model.prior_energy, n_walkers, tempering, n_steps, generator, 0.5)


def ais_log_marginal(
    model: LatentModel,
    x: Tensor,
    n_chains: int,
    tempering: Tempering,
    n_steps: int,
    generator: torch.Generator,
    step_size: float = 0.5,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """AIS estimate of log p~(x) per image and its SE, (N,) float64 nats, and diagnostics: for each image,
    ``n_chains`` chains from N(0, I) along U_b = |z|^2/2 + b (E_alpha(z) + |x - g(z)|^2 / (2 sigma^2)) by
    tempered SMC (:func:`_tempered_from_standard_normal`; ``step_size`` is the pilot's first).  Each image has
    its own populations, so resampling never mixes images.  Diagnostics: mean MALA acceptance, the
    temperatures per image."""
    check_images(model, x)
    est, se, acceptance, temps = [], [], [], []
    for xi in x:
        post = model.posterior_energy(xi.unsqueeze(0).expand(n_chains, *xi.shape))
        r = _tempered_from_standard_normal(model, post, n_chains, tempering, n_steps, generator, step_size)
        est.append(float(r.log_z))
        se.append(float(r.se))
        acceptance.append(r.diagnostics["acceptance"])
        temps.append(r.diagnostics["n_temperatures"])
    log_norm = gaussian_log_norm(x[0].numel(), model.sigma)
    out = torch.tensor(est, dtype=torch.float64) + log_norm
    return (
        out,
        torch.tensor(se, dtype=torch.float64),
        {"acceptance": sum(acceptance) / len(acceptance), "temperatures": temps},
    )


def combine(log_marginal: Tensor, log_marginal_se: Tensor, log_z: float, log_z_se: float) -> dict[str, float]:
    """Mean test log-likelihood in nats per image, ``loglik`` = mean(log p~(x)) - log Z_alpha, its standard error
    ``loglik_se`` = sqrt(sum_i se_i^2 / n^2 + se(log Z)^2) and its Jensen bias with the bias-corrected value.

    The SE is estimator noise for the fixed test set (the images' IS errors are independent, the log Z error is
    shared), conditional on the proposals covering the posteriors; it shrinks like 1/sqrt(n).  The bias does not:
    each log p~(x_i) estimate is the log of an unbiased estimate, biased low by about se_i^2 / 2, all with the same
    sign, and -log Z_alpha-hat is biased high by se(log Z)^2 / 2.  ``loglik_jensen_bias`` = -mean_i(se_i^2)/2 +
    se(log Z)^2/2 (``loglik_is_jensen_bias`` its first term; negative: loglik is biased low when the IS term
    dominates) and ``loglik_bias_corrected`` = loglik - loglik_jensen_bias, exact when the estimates are
    log-normal (:mod:`ebmlab.uncertainty`).  ``loglik_image_sd``: the spread of log p(x) over the images."""
    n = log_marginal.numel()
    is_se = float(log_marginal_se.square().sum().sqrt()) / n
    is_bias = float(jensen_bias(log_marginal_se).mean())
    bias = is_bias - float(jensen_bias(torch.tensor(log_z_se)))
    loglik = float(log_marginal.mean()) - log_z
    return {
        "loglik": loglik,
        "loglik_se": math.sqrt(is_se**2 + log_z_se**2),
        "loglik_jensen_bias": bias,
        "loglik_is_jensen_bias": is_bias,
        "loglik_bias_corrected": loglik - bias,
        "loglik_is_se": is_se,
        "log_z_prior": log_z,
        "log_z_prior_se": log_z_se,
        "loglik_image_sd": float(log_marginal.std()),
    }
