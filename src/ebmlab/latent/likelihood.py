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
finite where a Laplace covariance is too narrow.  The estimator of p~(x) is unbiased; its log is biased low
by about half its relative variance (reported by the SE), and a mode no start finds is still missed.

:func:`ais_log_marginal` is the independent check: per image, AIS from N(0, I) along the geometric path to
the unnormalised posterior, an SMC sampler (resampling, preconditioned MALA) on a schedule that a pilot run
adapts (:class:`~ebmlab.sampling.tempering.Tempering`).  On trained MNIST models plain AIS with a fixed step was 25
to 45 nats below IS: its chains, isotropic in an ill-conditioned posterior (standard deviations 0.05 to 0.7),
barely moved along the wide directions.  The adapted sampler agrees with IS within a standard error there,
and with the closed form on a linear-Gaussian model of the same conditioning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import check_int
from ..estimators.ais import ais
from ..estimators.estimate import Estimate
from ..sampling.langevin import EnergyFn
from ..sampling.tempering import Tempering
from .models import LatentModel


@dataclass(frozen=True)
class LikelihoodConfig:
    """n_samples proposal draws per image (split equally over the components); newton_steps Gauss-Newton
    steps towards a posterior mode from each start (a step is kept only where it lowers U_post); dof:
    degrees of freedom (integer) of the Student-t components; defensive: add N(0, I) as a component;
    batch: images per chunk."""

    n_samples: int = 128
    newton_steps: int = 5
    dof: int = 8
    defensive: bool = True
    batch: int = 32

    def __post_init__(self) -> None:
        for name, minimum in (("n_samples", 2), ("newton_steps", 0), ("dof", 1), ("batch", 1)):
            check_int(name, getattr(self, name), minimum)


def check_images(model: LatentModel, x: Tensor) -> None:
    """Raise ValueError unless ``x`` holds finite observations of the model's shape (a NaN pixel would make
    that image's log-likelihood NaN)."""
    model.check_x(x)
    bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
    if bad:
        raise ValueError(f"{bad} of the {x.shape[0]} images contain NaN or infinite values; clean them first")


def log_mean_and_se(log_w: Tensor) -> tuple[Tensor, Tensor]:
    """Per row of log-weights (n, k): logmeanexp and the standard error of it in nats,
    sqrt(log(1 + relvar)) with relvar = (k / ESS - 1) / (k - 1) the estimated relative variance of the mean."""
    k = log_w.shape[1]
    log_w = log_w.double()
    lme = torch.logsumexp(log_w, 1) - math.log(k)
    wbar = torch.softmax(log_w, 1)
    relvar = ((k * wbar.square().sum(1) - 1) / (k - 1)).clamp_min(0.0)
    return lme, torch.log1p(relvar).sqrt()


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


def gauss_newton_precision(model: LatentModel, z: Tensor) -> Tensor:
    """H = J^T J / sigma^2 + I at z (N, d), J = dg/dz (N, D, d) by d forward-mode products; (N, d, d)."""
    d = z.shape[1]
    cols = []
    for j in range(d):
        tangent = torch.zeros_like(z)
        tangent[:, j] = 1.0
        cols.append(torch.func.jvp(model.generator, (z,), (tangent,))[1].flatten(1))
    jac = torch.stack(cols, 2).double().detach()
    eye = torch.eye(d, dtype=torch.float64, device=z.device)
    return jac.transpose(1, 2) @ jac / model.sigma**2 + eye


def posterior_mode(model: LatentModel, x: Tensor, z: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """``steps`` Gauss-Newton steps z <- z - H^-1 grad U_post(z) from z (N, d), each kept per image only
    where it lowers U_post; returns (z, the Cholesky factor of H at z, (N, d, d) float64)."""
    energy = model.posterior_energy(x)
    for _ in range(steps):
        with torch.enable_grad():
            zg = z.detach().requires_grad_(True)
            u = energy(zg)
            (g,) = torch.autograd.grad(u.sum(), zg)
        h = gauss_newton_precision(model, z.detach())
        new = z.detach() - torch.linalg.solve(h, g.double().unsqueeze(2)).squeeze(2).to(z.dtype)
        with torch.no_grad():
            better = energy(new) < u.detach()
        z = torch.where(better[:, None], new, z.detach())
    return z.detach(), torch.linalg.cholesky(gauss_newton_precision(model, z.detach()))


def student_t_draws(mu: Tensor, chol: Tensor, k: int, dof: int, generator: torch.Generator) -> Tensor:
    """k draws per row (N, k, d) in mu's dtype from the multivariate Student-t with location mu (N, d),
    scale matrix H^-1 where chol (N, d, d) is the Cholesky factor of H, and ``dof`` degrees of freedom."""
    n, d = mu.shape
    eps = torch.randn(n, k, d, generator=generator, dtype=torch.float64, device=mu.device)
    chi2 = torch.randn(n, k, dof, generator=generator, dtype=torch.float64, device=mu.device).square().sum(2)
    # z - mu = L^-T eps sqrt(dof / chi2) (L L^T = H): solve L^T y = eps
    y = torch.linalg.solve_triangular(chol.transpose(1, 2), eps.transpose(1, 2), upper=True).transpose(1, 2)
    return (mu.double().unsqueeze(1) + y * (dof / chi2).sqrt().unsqueeze(2)).to(mu.dtype)


def student_t_log_density(z: Tensor, mu: Tensor, chol: Tensor, dof: int) -> Tensor:
    """log-density (N, k, M) float64 of points z (N, k, d) under M Student-t components per row with
    locations mu (N, M, d) and scale matrices H^-1, chol (N, M, d, d) the Cholesky factors of H."""
    d = z.shape[2]
    diff = z.double().unsqueeze(2) - mu.double().unsqueeze(1)  # (N, k, M, d)
    delta2 = torch.einsum("nmij,nkmi->nkmj", chol, diff).square().sum(3)  # |L^T (z - mu)|^2
    log_det_h = 2 * torch.diagonal(chol, dim1=2, dim2=3).log().sum(2).unsqueeze(1)
    const = math.lgamma((dof + d) / 2) - math.lgamma(dof / 2) - 0.5 * d * math.log(dof * math.pi)
    return const + 0.5 * log_det_h - 0.5 * (dof + d) * torch.log1p(delta2 / dof)


def mixture_draws(
    mu: Tensor, chol: Tensor, config: LikelihoodConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Draws (N, k, d) of the proposal: equal numbers from each of the M Student-t components per image and,
    with ``config.defensive``, from N(0, I); and the log-density (N, k) float64 of the equal-weight mixture at
    them (the deterministic-mixture weights of multiple importance sampling keep the estimator unbiased)."""
    n, m, d = mu.shape
    n_comp = m + int(config.defensive)
    per = config.n_samples // n_comp
    parts = [student_t_draws(mu[:, c], chol[:, c], per, config.dof, generator) for c in range(m)]
    if config.defensive:
        parts.append(torch.randn(n, per, d, generator=generator, dtype=mu.dtype, device=mu.device))
    z = torch.cat(parts, 1)
    log_q = student_t_log_density(z, mu, chol, config.dof)
    if config.defensive:
        log_n = -0.5 * z.double().square().sum(2, keepdim=True) - 0.5 * d * math.log(2 * math.pi)
        log_q = torch.cat([log_q, log_n], 2)
    return z, torch.logsumexp(log_q, 2) - math.log(n_comp)


def importance_log_marginal(
    model: LatentModel, x: Tensor, z_starts: Tensor, config: LikelihoodConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Importance-sampling estimate of log p~(x) per image (see the module docstring) and its SE, both (N,)
    float64 nats; x (N, *x_shape), z_starts (N, M, d) M latents per image from the sampler (the mode searches'
    starts: one Student-t component each)."""
    check_images(model, x)
    if z_starts.dim() != 3 or z_starts.shape[0] != x.shape[0] or z_starts.shape[2] != model.latent_dim:
        raise ValueError(f"z_starts must have shape ({x.shape[0]}, M, {model.latent_dim}), got {tuple(z_starts.shape)}")
    n_comp = z_starts.shape[1] + int(config.defensive)
    if config.n_samples < n_comp:
        raise ValueError(f"n_samples={config.n_samples} is below the number of proposal components ({n_comp})")
    est, se = [], []
    for i in range(0, x.shape[0], config.batch):
        xb, starts = x[i : i + config.batch], z_starts[i : i + config.batch]
        b, m, d = starts.shape
        mu, chol = posterior_mode(model, xb.repeat_interleave(m, 0), starts.reshape(b * m, d), config.newton_steps)
        z, log_q = mixture_draws(mu.reshape(b, m, d), chol.reshape(b, m, d, d), config, generator)
        k = z.shape[1]
        with torch.no_grad():
            log_p = log_unnormalised_joint(model, xb.repeat_interleave(k, 0), z.reshape(-1, d)).reshape(b, k)
        lme, lse = log_mean_and_se(log_p - log_q)
        est.append(lme)
        se.append(lse)
    return torch.cat(est), torch.cat(se)


def _standard_normal_energy(z: Tensor) -> Tensor:
    """|z|^2 / 2, (N,) nats: the energy of N(0, I) without its normaliser."""
    return 0.5 * z.square().sum(1)


def _tempered_from_standard_normal(
    model: LatentModel,
    energy: EnergyFn,
    n: int,
    tempering: Tempering,
    n_moves: int,
    generator: torch.Generator,
    step_size: float,
) -> Estimate:
    """log E_N(0,I)[exp(-(energy(z) - |z|^2/2))], nats: tempered SMC (preconditioned MALA, ``n_moves`` steps per
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
        step_size=step_size,
        generator=generator,
        n_moves=n_moves,
        ess_threshold=0.5,
        pilot=z[1],
    )


def prior_log_z_ais(
    model: LatentModel, n_walkers: int, n_moves: int, generator: torch.Generator, tempering: Tempering
) -> Estimate:
    """log Z_alpha relative to N(0, I), nats: log E_N(0,I)[exp(-E_alpha)] by tempered SMC of ``n_walkers``
    walkers to exp(-U_prior) (:func:`_tempered_from_standard_normal`; why an adapted schedule and not a fixed
    one: docs/latent.md)."""
    return _tempered_from_standard_normal(model, model.prior_energy, n_walkers, tempering, n_moves, generator, 0.5)


def ais_log_marginal(
    model: LatentModel,
    x: Tensor,
    n_chains: int,
    tempering: Tempering,
    n_moves: int,
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
        r = _tempered_from_standard_normal(model, post, n_chains, tempering, n_moves, generator, step_size)
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
    """Mean test log-likelihood in nats per image, mean(log p~(x)) - log Z_alpha, and its standard error
    sqrt(sum_i se_i^2 / n^2 + se(log Z)^2) (estimator noise for the fixed test set: the images' IS errors are
    independent, the log Z error is shared); ``loglik_image_sd``: the spread of log p(x) over the images."""
    n = log_marginal.numel()
    is_se = float(log_marginal_se.square().sum().sqrt()) / n
    return {
        "loglik": float(log_marginal.mean()) - log_z,
        "loglik_se": math.sqrt(is_se**2 + log_z_se**2),
        "loglik_is_se": is_se,
        "log_z_prior": log_z,
        "log_z_prior_se": log_z_se,
        "loglik_image_sd": float(log_marginal.std()),
    }
