"""The one standard-error convention of ebmlab, for every log-normalizer estimate (log Z, log p(x)).

An estimator of Z (or of a marginal likelihood) gives, besides Z_hat, an estimate v of its relative variance
Var(Z_hat) / Z^2; for the estimators solved on the log scale (RLR/MBAR, NCE) v is their first-order
(delta-method) variance of log Z_hat, which equals the relative variance of Z_hat to first order.  The reported
standard error of log Z_hat is

    se = sqrt(log(1 + v)),

the standard deviation of log Z_hat when Z_hat is log-normal with that relative variance.  It equals the
delta-method sqrt(v) to first order, stays finite and slowly growing where v is large (a heavy-tailed or
collapsed estimate), and its square fixes the Jensen bias of the log: an unbiased Z_hat has

    E[log Z_hat] - log Z = -se^2 / 2

exactly under the log-normal model (to second order in general).  log Z_hat is therefore biased low by about
se^2 / 2 and -log Z_hat high by as much; :func:`jensen_bias` gives the term.

The SE measures estimator noise only, given that the proposal (or the walkers) reach every region that carries
mass: it cannot see a mode that no draw visits, so an estimate that misses one is both wrong and confident.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# sup of sqrt(log(1 + v)) over the genealogy estimator's range v <= 1 (one surviving ancestor)
GENEALOGY_SE_CEILING = math.sqrt(math.log(2.0))


def se_from_relvar(relvar: Tensor) -> Tensor:
    """Standard error of log Z_hat in nats, sqrt(log1p(v)), from a relative-variance estimate v (any shape;
    negative rounding clamped to 0, +inf kept: an SE of inf)."""
    return torch.log1p(torch.as_tensor(relvar).clamp_min(0.0)).sqrt()


def jensen_bias(se: Tensor | float) -> Tensor | float:
    """The bias E[log Z_hat] - log Z = -se^2 / 2 (nats, <= 0) of the log of an unbiased estimate with SE ``se``
    (:func:`se_from_relvar`); subtracting it gives the bias-corrected log Z_hat + se^2 / 2."""
    return -0.5 * se * se
