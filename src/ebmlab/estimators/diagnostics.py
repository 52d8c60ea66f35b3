"""Diagnostics shared by the estimators: the overlap matrix's spectral gap and Pareto k-hat.

Kish ESS is :func:`ebmlab.sampling.walkers.ess` (sample axis first)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def overlap_eigengap(overlap: Tensor) -> Tensor:
    """1 - second-largest eigenvalue of the overlap matrix (..., S, S): 0 = disconnected states."""
    s = overlap.shape[-1]
    if s < 2:
        return torch.ones(overlap.shape[:-2], dtype=overlap.dtype, device=overlap.device)
    eig = torch.linalg.eigvals(overlap).real.sort(-1, descending=True).values
    return 1.0 - eig[..., 1]


def pareto_khat(log_w: Tensor, tail_fraction: float | None = None) -> Tensor:
    """Generalised-Pareto shape k-hat of the upper tail of importance weights (PSIS diagnostic).

    log_w: (..., N) log importance weights.  Fits the M = min(N/5, 3 sqrt(N)) largest weights above
    the next one with the Zhang & Stephens (2009) profile-likelihood estimator, with the weak prior of
    Vehtari et al. (PSIS).  k-hat > 0.7: the importance-sampling estimate is unreliable (variance
    effectively infinite).  Returns (...,), with these defined edge cases:

    - NaN when N < 10 or a log-weight is NaN (nothing to fit);
    - -inf when the M + 1 largest weights are equal (all weights equal included): the weights are bounded
      with no tail at all, the most reliable case (a generalised Pareto shape tends to -inf as its support
      shrinks to a point);
    - +inf when fewer than M + 1 weights are non-zero (log-weight > -inf): the estimate rests on fewer draws
      than the tail fit needs, as unreliable as a heavy tail.
    """
    n = log_w.shape[-1]
    if n < 10:
        return torch.full(log_w.shape[:-1], math.nan, dtype=torch.float64, device=log_w.device)
    m = int(tail_fraction * n) if tail_fraction else int(min(n / 5, 3 * math.sqrt(n)))
    m = max(m, 5)
    top = torch.topk(log_w.double(), m + 1, dim=-1).values.flip(-1)  # ascending, (..., m+1)
    # exceedances over the threshold weight, relative to the largest weight (all terms <= 1)
    safe = torch.where(torch.isfinite(top[..., :1]), top, torch.zeros_like(top))
    x = (torch.exp(safe[..., 1:] - safe[..., -1:]) - torch.exp(safe[..., :1] - safe[..., -1:])).clamp_min(0)
    k = _gpd_shape(x)
    k = torch.where(top[..., -1] == top[..., 0], -math.inf, k)
    k = torch.where(top[..., 0] == -math.inf, math.inf, k)
    return torch.where(torch.isnan(log_w).any(-1), math.nan, k)


def _gpd_shape(x: Tensor) -> Tensor:
    """Zhang-Stephens estimate of the generalised-Pareto shape k from sorted exceedances (..., m)."""
    m = x.shape[-1]
    n_grid = 30 + int(math.sqrt(m))
    j = torch.arange(1, n_grid + 1, dtype=torch.float64, device=x.device)
    quartile = x[..., max(int(m / 4 + 0.5) - 1, 0)].clamp_min(torch.finfo(torch.float64).tiny)
    xmax = x[..., -1]
    theta = 1 / xmax[..., None] + (1 - torch.sqrt(n_grid / (j - 0.5))) / (3 * quartile[..., None])
    k = torch.log1p(-theta[..., None] * x[..., None, :]).mean(-1)  # (..., grid)
    log_lik = m * (torch.log(-theta / k) - k - 1)
    weights = torch.softmax(log_lik, -1)
    theta_hat = (theta * weights).sum(-1)
    k_hat = torch.log1p(-theta_hat[..., None] * x).mean(-1)
    # Vehtari et al.: shrink towards 0.5 with a weak prior of 10 pseudo-observations
    return (k_hat * m + 0.5 * 10) / (m + 10)
