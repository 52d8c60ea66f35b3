"""The estimate type shared by every estimator, and the stratified log-mean core.

Every estimator returns an :class:`Estimate`: log normalizers in nats with standard errors and the
diagnostics that say whether to trust them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..sampling import walkers
from ..uncertainty import EstimatorWarning

__all__ = ["Estimate", "EstimatorWarning", "log_mean_relvar"]


@dataclass(frozen=True)
class Estimate:
    """A normalizing-constant estimate.

    log_z: log Z in nats, shape (*batch,) for single-target estimators or (*batch, K) for :func:`rlr`.
    se: standard error of log_z in nats, same shape, by the one convention of :mod:`ebmlab.uncertainty`:
        se = sqrt(log(1 + v)) with v the estimated relative variance of Z_hat (the first-order variance of
        log Z_hat for RLR and NCE), independent draws assumed; log_z is biased low by about se^2 / 2.  It is
        estimator noise only, conditional on the draws reaching every region of the target's mass.
    cov: (*batch, K, K) first-order (delta-method) covariance of log_z as pymbar reports it (rlr only; zero
        rows for fixed states); se = sqrt(log(1 + diag cov)), :meth:`se_diff` from cov.
    method: name of the estimator.
    ess: Kish effective sample size(s) of the importance weights involved.
    converged: (*batch,) bool, False where an iterative solver stopped before its tolerance.
    iterations: solver iterations used (0 for closed forms).
    overlap: (*batch, K, K) overlap matrix (rlr only).
    diagnostics: further named diagnostics (tensors or numbers).
    se_bootstrap: with ``bootstrap=B`` (:data:`~ebmlab.estimators.ESTIMATORS`), the standard deviation of log_z
        over B replicates with the draws resampled within each sample, beside the analytic se; else None.
    """

    log_z: Tensor
    se: Tensor
    method: str
    cov: Tensor | None = None
    ess: Tensor | None = None
    converged: Tensor | None = None
    iterations: int = 0
    overlap: Tensor | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    se_bootstrap: Tensor | None = None

    def __post_init__(self) -> None:
        if self.converged is None:
            batch = self.log_z.shape[:-1] if self.cov is not None else self.log_z.shape
            object.__setattr__(self, "converged", torch.ones(batch, dtype=torch.bool, device=self.log_z.device))

    @property
    def all_converged(self) -> bool:
        assert self.converged is not None  # set in __post_init__
        return bool(self.converged.all())

    def state(self, k: int) -> Estimate:
        """The estimate of state k alone from a multi-state (rlr) estimate: log_z, se, ess (*batch,);
        converged, iterations, overlap and diagnostics kept."""
        if self.cov is None:
            raise ValueError(f"{self.method} has a single log Z; state() needs a multi-state (rlr) estimate")
        return Estimate(
            log_z=self.log_z[..., k],
            se=self.se[..., k],
            method=self.method,
            ess=self.ess[..., k] if self.ess is not None else None,
            converged=self.converged,
            iterations=self.iterations,
            overlap=self.overlap,
            diagnostics=self.diagnostics,
        )

    def se_diff(self) -> Tensor:
        """Standard errors of all pairwise differences log Z_j - log Z_i, (*batch, K, K) (rlr only)."""
        if self.cov is None:
            raise ValueError(f"{self.method} has a single log Z; se_diff needs a multi-state (rlr) estimate")
        d = torch.diagonal(self.cov, dim1=-2, dim2=-1)
        var = d.unsqueeze(-1) + d.unsqueeze(-2) - 2 * self.cov
        return var.clamp_min(0).sqrt()


def log_mean_relvar(log_terms: Tensor, counts: Sequence[int] | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Log of a (stratified) sample mean, its relative variance and the Kish ESS of the terms.

    log_terms: (..., N) logs of non-negative terms t_n, pooled over strata of sizes ``counts`` (one
    stratum if None).  Returns (log mean (...,), Var(mean)/mean^2 (...,), ESS (...,)), where
    Var(mean) = sum_j N_j var_j / N^2 with unbiased within-stratum variances var_j.  Computed from
    log-sum-exps of the terms relative to their total, never from exp of raw log terms.
    """
    n = log_terms.shape[-1]
    if n < 1:
        raise ValueError("need at least one sample")
    total = torch.logsumexp(log_terms, -1)
    log_mean = total - math.log(n)
    groups = [n] if counts is None else [int(c) for c in counts]
    relvar = torch.zeros_like(total)
    for block in torch.split(log_terms, groups, dim=-1):
        nj = block.shape[-1]
        if nj < 2:
            return log_mean, torch.full_like(total, math.inf), walkers.ess(log_terms.movedim(-1, 0))
        s1 = torch.logsumexp(block, -1) - total
        s2 = torch.logsumexp(2 * block, -1) - 2 * total
        relvar = relvar + (torch.exp(s2) - torch.exp(2 * s1) / nj) * nj / (nj - 1)
    relvar = torch.where(torch.isfinite(total), relvar.clamp_min(0), torch.full_like(relvar, math.inf))
    return log_mean, relvar, walkers.ess(log_terms.movedim(-1, 0))
