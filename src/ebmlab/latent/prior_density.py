"""2-D quadrature of a latent prior: its normalised density on a grid, the true latent density as cell
probabilities of many exact draws, the KL between them, and exact marginal likelihoods of a 2-D model.

The grid has n x n cells of side 2 lim / n over [-lim, lim]^2 (midpoint rule); densities are in nats per
unit area, cell probabilities sum to one over the box.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..deprecation import renamed
from ..metrics import masses
from .likelihood import gaussian_log_norm
from .models import LatentModel


def cell_centres(lim: float, n: int, dtype: torch.dtype = torch.float32, device=None) -> tuple[Tensor, float]:
    """The cells of :func:`~ebmlab.metrics.masses.grid_points` over [-lim, lim]^2 in image layout: centres
    (n*n, 2) row-major with the second coordinate along rows (as the (n, n) arrays here), and the cell area."""
    side = 2 * lim / n
    return masses.grid_points(lim, n, 2, dtype, device).reshape(n, n, 2).transpose(0, 1).reshape(-1, 2), side * side


def prior_log_density(model: LatentModel, lim: float = 4.0, n: int = 100) -> tuple[Tensor, float]:
    """log p_alpha at the cell centres (n, n) float64, normalised by quadrature over the box, and the
    quadrature log Z_alpha relative to N(0, I) (nats)."""
    z, area = cell_centres(lim, n, device=next(model.parameters(), torch.empty(0)).device)
    with torch.no_grad():
        log_f = -model.prior(z).double() - math.log(2 * math.pi)  # -E - |z|^2/2 + log N's constant
    log_z = float(torch.logsumexp(log_f, 0) + math.log(area))
    return (log_f - log_z).reshape(n, n), log_z


def cell_probabilities(z: Tensor, lim: float = 4.0, n: int = 100) -> Tensor:
    """Fraction of the points z (N, 2) in each cell (n, n) float64 (points outside the box are dropped and
    the rest renormalised)."""
    side = 2 * lim / n
    idx = torch.floor((z.detach().double().cpu() + lim) / side).long()
    inside = ((idx >= 0) & (idx < n)).all(1)
    idx = idx[inside]
    counts = torch.zeros(n * n, dtype=torch.float64).index_add_(
        0, idx[:, 1] * n + idx[:, 0], torch.ones(len(idx), dtype=torch.float64)
    )
    return (counts / counts.sum()).reshape(n, n)


def cell_kl(p: Tensor, log_q_density: Tensor, area: float) -> float:
    """KL(P || Q) in nats between cell probabilities P (n, n) and the cell probabilities of a density
    Q = q(centre) * area (log q (n, n)), summed over the cells where P > 0."""
    log_q = log_q_density.cpu() + math.log(area)
    mask = p > 0
    return float((p[mask] * (p[mask].log() - log_q[mask])).sum())


def quadrature_log_marginal(
    model: LatentModel, x: Tensor, log_prior_cells: Tensor, lim: float = 4.0, n: int = 100
) -> Tensor:
    """log p(x) = log sum_cells N(x; g(z_c), sigma^2 I) P_c for a prior given by its cell log-probabilities
    log_prior_cells (n, n) (densities + log area, or log cell probabilities); x (N, D); returns (N,) float64."""
    z, _ = cell_centres(lim, n, device=x.device)
    log_p = log_prior_cells.reshape(-1).to(x.device)
    with torch.no_grad():
        gz = model.generator(z).flatten(1).double()
        sse = torch.cdist(x.flatten(1).double(), gz).square()
    log_lik = -sse / (2 * model.sigma**2) + gaussian_log_norm(gz.shape[1], model.sigma)
    return torch.logsumexp(log_lik + log_p, 1)


__getattr__ = renamed(__name__, {"grid_points": f"{__name__}.cell_centres"})
