"""The importance-sampling proposal of the latent test log-likelihood (:mod:`.likelihood`): per image, a mixture
of multivariate Student-t components at posterior modes with Laplace (Gauss-Newton) scale matrices, one per
start, plus a defensive N(0, I) component, sampled stratified (equal draws per component)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import check_int
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

    def n_components(self, n_starts: int) -> int:
        """Proposal components for ``n_starts`` starts: one Student-t per start, plus N(0, I) if defensive."""
        return n_starts + int(self.defensive)

    def n_draws(self, n_starts: int) -> int:
        """Draws per image that actually run: n_samples rounded down to a multiple of the number of components
        (each gets the same number, n_samples // components)."""
        c = self.n_components(n_starts)
        return self.n_samples // c * c


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
    """Draws (N, k, d) of the proposal, stratified: k / C from each of its C components per image, in component
    order (the M Student-t components, then N(0, I) with ``config.defensive``); and the log-density (N, k, C)
    float64 of every component at every draw.  The equal-weight mixture density is their logmeanexp."""
    n, m, d = mu.shape
    n_comp = config.n_components(m)
    per = config.n_draws(m) // n_comp
    parts = [student_t_draws(mu[:, c], chol[:, c], per, config.dof, generator) for c in range(m)]
    if config.defensive:
        parts.append(torch.randn(n, per, d, generator=generator, dtype=mu.dtype, device=mu.device))
    z = torch.cat(parts, 1)
    log_q = student_t_log_density(z, mu, chol, config.dof)
    if config.defensive:
        log_n = -0.5 * z.double().square().sum(2, keepdim=True) - 0.5 * d * math.log(2 * math.pi)
        log_q = torch.cat([log_q, log_n], 2)
    return z, log_q
