"""Test log-likelihood of a latent EBM: log p(x) = log int p_beta(x | z) p_alpha(z) dz, in nats per image.

With p_alpha(z) = exp(-E_alpha(z)) N(z; 0, I) / Z_alpha and p_beta(x | z) = N(x; g(z), sigma^2 I),

    log p(x) = log p~(x) - log Z_alpha,   p~(x) = int N(x; g(z), sigma^2 I) exp(-E_alpha(z)) N(z; 0, I) dz,

and log Z_alpha (relative to N(0, I)) comes from the Jarzynski walkers' estimator population or from AIS
from N(0, I) (:func:`prior_log_z_ais`).

p~(x) by importance sampling (:func:`importance_log_marginal`): the proposal is a multivariate Student-t
centred at the posterior mode found from the sampler's latents (a few Gauss-Newton steps on U_post) with
scale matrix the inverse Gauss-Newton precision H = J^T J / sigma^2 + I (J = dg/dz at the mode; E_alpha's
curvature left out).  Why this proposal: its density is exact and cheap, the Laplace shape fits a posterior
that 784 pixels make sharp and nearly Gaussian, and its polynomial tails dominate the Gaussian tails of the
posterior, so the importance weights p/q stay bounded far out and their variance finite even where the
Laplace covariance is too narrow (a Gaussian proposal could give infinite-variance weights).  The estimator
of p~(x) is unbiased; log of it is biased low by about half its relative variance (reported by the SE).

:func:`ais_log_marginal` is the independent check: AIS from N(0, I) along the geometric path to the
unnormalised posterior, with the library's AIS on the weighted-walker engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..estimators.ais import ais
from ..estimators.estimate import Estimate
from .models import LatentModel


@dataclass(frozen=True)
class LikelihoodConfig:
    """n_samples proposal draws per image; newton_steps Gauss-Newton steps towards the posterior mode
    (a step is kept only where it lowers U_post); dof: degrees of freedom (integer) of the Student-t
    proposal; batch: images per chunk."""

    n_samples: int = 128
    newton_steps: int = 5
    dof: int = 8
    batch: int = 32

    def __post_init__(self) -> None:
        if self.n_samples < 2 or self.newton_steps < 0 or self.dof < 1 or self.batch < 1:
            raise ValueError(
                f"need n_samples >= 2, newton_steps >= 0, dof >= 1, batch >= 1; got {self.n_samples}, "
                f"{self.newton_steps}, {self.dof}, {self.batch}"
            )


def log_mean_and_se(log_w: Tensor) -> tuple[Tensor, Tensor]:
    """Per row of log-weights (n, k): logmeanexp and the standard error of it in nats,
    sqrt(log(1 + relvar)) with relvar = (k / ESS - 1) / (k - 1) the estimated relative variance of the mean."""
    k = log_w.shape[1]
    log_w = log_w.double()
    lme = torch.logsumexp(log_w, 1) - math.log(k)
    wbar = torch.softmax(log_w, 1)
    relvar = ((k * wbar.square().sum(1) - 1) / (k - 1)).clamp_min(0.0)
    return lme, torch.log1p(relvar).sqrt()


def log_gaussian_likelihood(model: LatentModel, x: Tensor, z: Tensor) -> Tensor:
    """log N(x; g(z), sigma^2 I) (N,) in nats, x (N, *x_shape), z (N, d)."""
    dim = x[0].numel()
    return -model.sse(x, z).double() / (2 * model.sigma**2) - 0.5 * dim * math.log(2 * math.pi * model.sigma**2)


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


def student_t_draws(mu: Tensor, chol: Tensor, k: int, dof: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """k draws per row from the multivariate Student-t with location mu (N, d), scale matrix H^-1 where
    chol (N, d, d) is the Cholesky factor of H, and ``dof`` degrees of freedom; returns the draws
    (N, k, d) in mu's dtype and their log-density (N, k) float64."""
    n, d = mu.shape
    eps = torch.randn(n, k, d, generator=generator, dtype=torch.float64, device=mu.device)
    chi2 = torch.randn(n, k, dof, generator=generator, dtype=torch.float64, device=mu.device).square().sum(2)
    scale = (dof / chi2).sqrt().unsqueeze(2)
    # z - mu = H^{-1/2} eps * scale with H^{-1/2} = L^-T (L L^T = H): solve L^T y = eps
    y = torch.linalg.solve_triangular(chol.transpose(1, 2), eps.transpose(1, 2), upper=True).transpose(1, 2)
    z = mu.double().unsqueeze(1) + y * scale
    delta2 = eps.square().sum(2) * scale.squeeze(2).square()  # |L^T (z - mu)|^2
    log_det_h = 2 * torch.diagonal(chol, dim1=1, dim2=2).log().sum(1, keepdim=True)
    log_q = (
        math.lgamma((dof + d) / 2)
        - math.lgamma(dof / 2)
        - 0.5 * d * math.log(dof * math.pi)
        + 0.5 * log_det_h
        - 0.5 * (dof + d) * torch.log1p(delta2 / dof)
    )
    return z.to(mu.dtype), log_q


def importance_log_marginal(
    model: LatentModel, x: Tensor, z_init: Tensor, config: LikelihoodConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Importance-sampling estimate of log p~(x) per image (see the module docstring) and its SE, both
    (N,) float64 nats; x (N, *x_shape), z_init (N, d) the sampler's latents for x (mode-search starts)."""
    model.check_x(x)
    if z_init.shape != (x.shape[0], model.latent_dim):
        raise ValueError(f"z_init must have shape ({x.shape[0]}, {model.latent_dim}), got {tuple(z_init.shape)}")
    est, se = [], []
    for i in range(0, x.shape[0], config.batch):
        xb = x[i : i + config.batch]
        mu, chol = posterior_mode(model, xb, z_init[i : i + config.batch], config.newton_steps)
        z, log_q = student_t_draws(mu, chol, config.n_samples, config.dof, generator)
        k = config.n_samples
        with torch.no_grad():
            x_rep = xb.repeat_interleave(k, 0)
            log_p = log_unnormalised_joint(model, x_rep, z.reshape(-1, model.latent_dim)).reshape(-1, k)
        a, b = log_mean_and_se(log_p - log_q)
        est.append(a)
        se.append(b)
    return torch.cat(est), torch.cat(se)


def prior_log_z_ais(
    model: LatentModel, n_walkers: int, n_temps: int, step_size: float, generator: torch.Generator, n_moves: int = 2
) -> Estimate:
    """log Z_alpha relative to N(0, I) by AIS (MALA) from exact N(0, I) draws to exp(-U_prior), nats."""
    p = next(model.parameters())
    z0 = torch.randn(n_walkers, model.latent_dim, generator=generator, device=p.device, dtype=p.dtype)

    def base(z: Tensor) -> Tensor:
        return 0.5 * z.square().sum(1)

    # log_z0 = 0: the estimate is log(Z_1 / Z_0) = log E_N(0,I)[exp(-E_alpha)]
    return ais(base, model.prior_energy, z0, 0.0, n_temps, step_size=step_size, generator=generator, n_moves=n_moves)


def ais_log_marginal(
    model: LatentModel,
    x: Tensor,
    n_chains: int,
    n_temps: int,
    step_size: float,
    generator: torch.Generator,
    n_moves: int = 1,
) -> tuple[Tensor, Tensor]:
    """AIS estimate of log p~(x) per image and its SE, (N,) float64 nats: n_chains MALA chains per image from
    N(0, I) along U_b = |z|^2/2 + b (E_alpha(z) + |x - g(z)|^2 / (2 sigma^2)), b on a geometric grid from 1e-4
    to 1 (n_temps temperatures after b = 0)."""
    model.check_x(x)
    n = x.shape[0]
    x_rep = x.repeat_interleave(n_chains, 0)
    p = next(model.parameters())
    z0 = torch.randn(n * n_chains, model.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(-4, 0, n_temps, dtype=torch.float64)])

    def base(z: Tensor) -> Tensor:
        return 0.5 * z.square().sum(1)

    est = ais(
        base,
        model.posterior_energy(x_rep),
        z0,
        0.0,
        betas,
        step_size=step_size,
        generator=generator,
        n_moves=n_moves,
    )
    lme, se = log_mean_and_se(est.diagnostics["log_w"].reshape(n, n_chains))
    dim = x[0].numel()
    return lme - 0.5 * dim * math.log(2 * math.pi * model.sigma**2), se


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
