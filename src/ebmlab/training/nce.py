"""Noise-contrastive estimation (Gutmann & Hyvarinen 2010, 2012): learn an energy and its log Z together.

The model log density is log p_m(u) = -U_theta(u) - log Z, with log Z a free scalar parameter.  Data
x ~ p_data (T_d of them) are classified against noise y ~ p_n (T_n = nu T_d) by logistic regression
with logit G(u) - log nu, G = log p_m - log p_n.  The loss is the negative NCE objective

    L = -(1/T_d) [ sum_t log sigmoid(G(x_t) - log nu) + sum_t log sigmoid(-(G(y_t) - log nu)) ],

whose minimiser is consistent for (theta, log Z) when the noise covers the data.  With theta fixed
the log Z part is exactly the optimal bridge estimator (see :func:`ebmlab.estimators.nce_log_z`).
The noise is a :class:`~ebmlab.estimators.noise.Proposal`: ``sample(n, generator)`` and normalised
``log_prob(x)`` (e.g. :class:`ebmlab.estimators.GaussianNoise`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.functional import logsigmoid
from tqdm.auto import tqdm

from ..deprecation import renamed
from ..estimators.noise import Proposal


@dataclass
class NCEResult:
    """Learned log Z (nats) and the training history (recorded every ``log_every`` steps)."""

    log_z: float
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    log_z_history: list[float] = field(default_factory=list)


def nce_loss(energy: nn.Module, log_z: Tensor, x: Tensor, y: Tensor, noise: Proposal) -> Tensor:
    """Negative NCE objective (scalar) for data x (T_d, ...) and noise draws y (T_n, ...), nu = T_n/T_d."""
    log_nu = math.log(y.shape[0] / x.shape[0])
    g_x = -energy(x) - log_z - noise.log_prob(x).to(log_z.dtype) - log_nu
    g_y = -energy(y) - log_z - noise.log_prob(y).to(log_z.dtype) - log_nu
    return -(logsigmoid(g_x).sum() + logsigmoid(-g_y).sum()) / x.shape[0]


@torch.no_grad()
def initial_log_z(energy: nn.Module, noise: Proposal, n: int, generator: torch.Generator, dtype: torch.dtype) -> float:
    """Importance-sampling start for log Z: logmeanexp(-U(y) - log p_n(y)), y ~ noise."""
    y = noise.sample(n, generator).to(dtype)
    log_w = (-energy(y)).double() - noise.log_prob(y).double()
    return float(torch.logsumexp(log_w, 0) - math.log(n))


def train_nce(
    energy: nn.Module,
    data: Tensor,
    noise: Proposal,
    *,
    generator: torch.Generator,
    nu: float = 1.0,
    steps: int = 2000,
    lr: float = 1e-2,
    batch_size: int | None = None,
    log_z_init: float | None = None,
    log_every: int = 50,
    progress: bool = False,
) -> NCEResult:
    """Fit ``energy``'s parameters and log Z by minimising :func:`nce_loss` with Adam.

    data: (n, *event) training points (dtype of the energy).  Each step draws ``batch_size`` data
    points (all of them if None) and nu * batch_size fresh noise points.  log Z starts at
    ``log_z_init`` or an importance-sampling estimate under the noise.  Returns an :class:`NCEResult`;
    the energy is trained in place.  Raises ValueError if the loss becomes non-finite.
    """
    if data.dim() < 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (n, *event) with n >= 1, got {tuple(data.shape)}")
    if not nu > 0:
        raise ValueError(f"nu must be positive, got {nu}")
    n = data.shape[0]
    batch = n if batch_size is None else int(batch_size)
    if not 1 <= batch <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size}")
    n_noise = max(1, round(nu * batch))
    start = initial_log_z(energy, noise, n_noise, generator, data.dtype) if log_z_init is None else log_z_init
    log_z = nn.Parameter(torch.tensor(start, dtype=data.dtype, device=data.device))
    opt = torch.optim.Adam([*energy.parameters(), log_z], lr=lr)
    result = NCEResult(log_z=start)
    for step in tqdm(range(steps), desc="nce", disable=None if progress else True):
        x = data if batch == n else data[torch.randperm(n, generator=generator)[:batch]]
        y = noise.sample(n_noise, generator).to(data.dtype)
        loss = nce_loss(energy, log_z, x, y, noise)
        if not torch.isfinite(loss):
            raise ValueError(f"NCE loss became non-finite at step {step}: lower lr or widen the noise")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            result.steps.append(step)
            result.loss.append(float(loss.detach()))
            result.log_z_history.append(float(log_z.detach()))
    result.log_z = float(log_z.detach())
    return result


__getattr__ = renamed(__name__, {"Noise": "ebmlab.estimators.noise.Proposal"})
