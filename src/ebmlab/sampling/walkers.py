"""The weighted walker population: positions, float64 log-weights and log-Z bookkeeping.

All walker-set operations (weights, ESS, log-Z estimate, resampling) live here, as pure functions
over :class:`Walkers`, so that a distributed backend can replace the reductions.

log Z estimate (standard SMC): log Z_hat = log_z_ref + logmeanexp(A).  At a resampling,
log_z_ref := log Z_hat and A := 0, so the estimate is unchanged by resampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .langevin import LangevinState
from .resampling import get_resampler


@dataclass(frozen=True)
class Walkers:
    """A walker population.

    state: positions with cached energy/gradient (N walkers).
    log_w: (N,) float64 log-weights A (any additive constant).
    log_z_ref: () float64, log Z reference carried across resamplings.
    """

    state: LangevinState
    log_w: Tensor
    log_z_ref: Tensor

    @property
    def n(self) -> int:
        return self.log_w.numel()

    @property
    def x(self) -> Tensor:
        return self.state.x


def make_walkers(state: LangevinState, log_z_ref: float | Tensor = 0.0) -> Walkers:
    """Equal-weight walkers (A = 0) with a log Z reference (log Z of the distribution they start from)."""
    n = state.x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 walkers, got {n}")
    dev = state.x.device
    return Walkers(state, torch.zeros(n, dtype=torch.float64, device=dev),
                   torch.as_tensor(log_z_ref, dtype=torch.float64, device=dev).clone())


def normalized_weights(log_w: Tensor) -> Tensor:
    """softmax(A): normalised weights (N,), float64."""
    return torch.softmax(log_w.double(), 0)


def log_mean_weight(log_w: Tensor) -> Tensor:
    """logmeanexp(A), float64 scalar."""
    return torch.logsumexp(log_w.double(), 0) - math.log(log_w.numel())


def ess(log_w: Tensor) -> Tensor:
    """Kish effective sample size (sum w)^2 / sum w^2 = 1 / sum wbar^2, in [1, N]."""
    a = log_w.double()
    a = a - a.max()  # shift first: keeps full precision when |A| is large
    return torch.exp(2 * torch.logsumexp(a, 0) - torch.logsumexp(2 * a, 0))


def ess_fraction(log_w: Tensor) -> Tensor:
    """ESS / N = E[w]^2 / E[w^2], in [1/N, 1]."""
    return ess(log_w) / log_w.numel()


def cv2(log_w: Tensor) -> Tensor:
    """Squared coefficient of variation of the weights, E[w^2]/E[w]^2 - 1 = N/ESS - 1."""
    return 1.0 / ess_fraction(log_w) - 1.0


def log_z_estimate(walkers: Walkers) -> Tensor:
    """Running estimate log Z_hat = log_z_ref + logmeanexp(A)."""
    return walkers.log_z_ref + log_mean_weight(walkers.log_w)


def add_log_weights(walkers: Walkers, increment: Tensor) -> Walkers:
    """A := A + increment (float64)."""
    return replace(walkers, log_w=walkers.log_w + increment.double())


def resample(walkers: Walkers, scheme: str, generator: torch.Generator) -> Walkers:
    """Resample the population by its weights; A := 0 and log_z_ref := current log Z estimate."""
    idx = get_resampler(scheme)(normalized_weights(walkers.log_w), walkers.n, generator)
    return Walkers(walkers.state.index(idx), torch.zeros_like(walkers.log_w), log_z_estimate(walkers))


def maybe_resample(
    walkers: Walkers, threshold: float, scheme: str, generator: torch.Generator
) -> tuple[Walkers, bool]:
    """Resample when ESS/N < threshold; returns (walkers, whether it resampled)."""
    if float(ess_fraction(walkers.log_w)) < threshold:
        return resample(walkers, scheme, generator), True
    return walkers, False
