"""Bayesian logistic regression with a learned prior mean, as a batched joint potential (nats).

Labels t_j in {0, 1} with P(t_j = 1 | w) = sigmoid(phi_j . w); prior w ~ N(theta 1, v I) with v fixed (5 in
Kuntz, Lim & Johansen 2023) and the scalar theta learned by maximum marginal likelihood, one per group
(parameter ``theta`` (B,)).  U(theta, w) = sum_j softplus(-s_j phi_j . w) + |w - theta 1|^2 / (2 v)
+ d/2 log(2 pi v), s_j = 2 t_j - 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from .regression import _theta


def _check(features: Tensor, labels: Tensor) -> None:
    if not isinstance(features, Tensor) or features.dim() != 3 or features.dtype != torch.float64:
        raise ValueError("features must be a float64 tensor (B, n, d)")
    if not isinstance(labels, Tensor) or labels.shape != features.shape[:2]:
        raise ValueError(f"labels must have shape {tuple(features.shape[:2])} (B, n), matching the features")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels must be 0 or 1")


class BayesLogistic(nn.Module):
    """features (B, n, d) float64, labels (B, n) in {0, 1}; prior_var v > 0; theta0: initial prior mean."""

    features: Tensor
    signs: Tensor

    def __init__(self, features: Tensor, labels: Tensor, prior_var: float = 5.0, theta0: Tensor | float = 0.0):
        super().__init__()
        _check(features, labels)
        if not (isinstance(prior_var, (int, float)) and math.isfinite(prior_var) and prior_var > 0):
            raise ValueError(f"prior_var must be a positive number, got {prior_var!r}")
        self.groups, self.dim, self.prior_var = features.shape[0], features.shape[2], float(prior_var)
        self.register_buffer("features", features)
        self.register_buffer("signs", 2.0 * labels.to(torch.float64) - 1.0)
        self.theta = _theta(theta0, self.groups, "theta0")

    def forward(self, x: Tensor) -> Tensor:
        logits = x @ self.features.transpose(1, 2)  # (B, N, n)
        nll = softplus(-self.signs[:, None, :] * logits).sum(-1)
        v = self.prior_var
        prior = (x - self.theta[:, None, None]).square().sum(-1) / (2 * v) + 0.5 * self.dim * math.log(2 * math.pi * v)
        return nll + prior


def log_predictive(x: Tensor, weights: Tensor, features: Tensor, labels: Tensor) -> Tensor:
    """Test log pointwise predictive density per point (B,), nats: the mean over test points j of
    log sum_i w_i P(t_j | phi_j, x_i), for weighted posterior draws x (B, N, d), weights (B, N) summing to one,
    test features (B, m, d) and labels (B, m)."""
    _check(features, labels)
    logits = x @ features.transpose(1, 2)  # (B, N, m)
    log_p = -softplus(-(2.0 * labels.to(torch.float64) - 1.0)[:, None, :] * logits)
    return torch.logsumexp(log_p + weights.log()[..., None], 1).mean(1)


__all__ = ["BayesLogistic", "log_predictive"]
