"""Baselines that need no walkers: exact ML-II (type-II maximum likelihood) for the Gaussian model and OLS + BIC.

ML-II maximises the closed-form evidence log N(y; 0, sigma^2 I + alpha^-1 Phi Phi^T) over theta =
(log sigma^2, log alpha) with L-BFGS-B (SciPy): the ceiling for any estimate of the same model's evidence.  The B
fits are separable, so one L-BFGS-B run over all 2B parameters converges when every fit's gradient is below the
tolerance.  BIC (Schwarz 1978) = n log(RSS / n) + d log n for the least-squares fit with d coefficients.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from .regression import BayesLinearRegression, check_regression_data


def ml2(model: BayesLinearRegression, gtol: float = 1e-7, maxiter: int = 5000) -> tuple[Tensor, Tensor, float]:
    """Exact ML-II from the model's current theta: (theta_hat (B, 2), log evidence there (B,), the largest
    |gradient| left (nats per unit of log sigma^2 or log alpha)).  The model's theta is set to theta_hat."""
    params = [model.log_sigma2, model.log_alpha]

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        with torch.no_grad():
            for p, part in zip(params, np.split(v, 2)):
                p.copy_(torch.from_numpy(part))
        for p in params:
            p.grad = None
        loss = -model.log_evidence().sum()
        loss.backward()
        return float(loss.detach()), torch.cat([cast(Tensor, p.grad) for p in params]).numpy().copy()  # set by backward

    v0 = torch.cat([p.detach() for p in params]).numpy().copy()
    res = minimize(
        objective, v0, jac=True, method="L-BFGS-B", options={"gtol": gtol, "ftol": 1e-15, "maxiter": maxiter}
    )
    _, grad = objective(res.x)
    with torch.no_grad():
        evidence = model.log_evidence()
    return model.theta, evidence, float(np.abs(grad).max())


def ols_bic(features: Tensor, y: Tensor) -> Tensor:
    """BIC = n log(RSS / n) + d log n of the least-squares fit of y (B, n) on features (B, n, d): (B,), smaller
    is better (SVD-based least squares: the polynomial designs are ill-conditioned)."""
    check_regression_data(features, y)
    n, d = features.shape[1], features.shape[2]
    coef = torch.linalg.lstsq(features, y.unsqueeze(-1), driver="gelsd").solution
    rss = (y - (features @ coef).squeeze(-1)).square().sum(1)
    return n * torch.log(rss / n) + d * math.log(n)


__all__ = ["ml2", "ols_bic"]
