"""NCE that also learns the parameters (Gutmann & Hyvarinen 2012) of a diagonal-Gaussian EBM, batched over
replicates, for the estimator study's parameter-MSE column.

Model log p_m(x) = sum_j (a_j x_j + b_j x_j^2) + c (b_j < 0), an exponential family, so NCE's objective is a
logistic regression of data vs noise on the features (x, x^2, 1) with offset -log q(x) - log nu: concave, solved
here by Newton's method with a backtracking line search.  Its log Z estimate is -c-hat; the exact log normalizer
of the fitted model is sum_j [log(pi / -b_j) / 2 - a_j^2 / (4 b_j)].
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

STEPS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.0)


def features(x: Tensor) -> Tensor:
    """(reps, N, d) -> (reps, N, 2d + 1): x, x^2 and a constant."""
    return torch.cat([x, x.square(), torch.ones_like(x[..., :1])], -1)


def log_normalizer(theta: Tensor) -> Tensor:
    """Exact log Z of exp(sum_j a_j x_j + b_j x_j^2) for theta (reps, 2d + 1) = (a, b, c); inf where b >= 0."""
    d = (theta.shape[-1] - 1) // 2
    a, b = theta[..., :d], theta[..., d : 2 * d]
    per = 0.5 * torch.log(math.pi / -b) - a.square() / (4 * b)
    return torch.where((b < 0).all(-1), per.sum(-1), torch.full_like(per[..., 0], math.inf))


def _objective(theta: Tensor, fx: Tensor, fy: Tensor, off_x: Tensor, off_y: Tensor) -> Tensor:
    gx = (fx @ theta.unsqueeze(-1)).squeeze(-1) + off_x
    gy = (fy @ theta.unsqueeze(-1)).squeeze(-1) + off_y
    return logsigmoid(gx).sum(-1) + logsigmoid(-gy).sum(-1)


def nce_fit(x: Tensor, y: Tensor, log_q_x: Tensor, log_q_y: Tensor, iters: int = 60) -> Tensor:
    """NCE estimate of theta = (a, b, c) per replicate, (reps, 2d + 1), from data x (reps, N1, d) and noise y
    (reps, N2, d) with the noise's log density at both; nu = N2 / N1.  Starts at the noise's own Gaussian fit."""
    n1, n2 = x.shape[-2], y.shape[-2]
    log_nu = math.log(n2 / n1)
    fx, fy = features(x.double()), features(y.double())
    off_x, off_y = -log_q_x.double() - log_nu, -log_q_y.double() - log_nu
    d = x.shape[-1]
    mean, var = y.double().mean(-2), y.double().var(-2)
    theta = torch.cat([mean / var, -0.5 / var, torch.zeros_like(mean[..., :1])], -1)
    theta[..., -1] = -log_normalizer(theta)
    for _ in range(iters):
        gx = (fx @ theta.unsqueeze(-1)).squeeze(-1) + off_x
        gy = (fy @ theta.unsqueeze(-1)).squeeze(-1) + off_y
        grad = (torch.sigmoid(-gx).unsqueeze(-1) * fx).sum(-2) - (torch.sigmoid(gy).unsqueeze(-1) * fy).sum(-2)
        wx, wy = torch.sigmoid(gx) * torch.sigmoid(-gx), torch.sigmoid(gy) * torch.sigmoid(-gy)
        hess = fx.transpose(-1, -2) @ (wx.unsqueeze(-1) * fx) + fy.transpose(-1, -2) @ (wy.unsqueeze(-1) * fy)
        hess = hess + 1e-10 * torch.eye(2 * d + 1, dtype=hess.dtype, device=hess.device)
        step = torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        trials = torch.stack([_objective(theta + s * step, fx, fy, off_x, off_y) for s in STEPS], -1)
        best = torch.tensor(STEPS, dtype=theta.dtype, device=theta.device)[trials.nan_to_num(-math.inf).argmax(-1)]
        theta = theta + best.unsqueeze(-1) * step
        if bool((grad.abs().amax(-1) < 1e-9 * n1).all()):
            break
    return theta
