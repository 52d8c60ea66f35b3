"""The weighted walker population: positions, float64 log-weights and log-Z bookkeeping.

All walker-set operations (weights, ESS, log-Z estimate, resampling) live here, as pure functions
over :class:`Walkers`.  Each takes a :class:`~ebmlab.distributed.Collective` (default: one process);
with a distributed one the walkers are a shard of the population (equal shards, N/P walkers per
process) and every quantity is global.

log Z estimate (standard SMC): log Z_hat = log_z_ref + logmeanexp(A).  At a resampling,
log_z_ref := log Z_hat and A := 0, so the estimate is unchanged by resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective
from .langevin import LangevinState
from .resampling import get_resampler

SCOPES = ("global", "local")


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
    return Walkers(
        state,
        torch.zeros(n, dtype=torch.float64, device=dev),
        torch.as_tensor(log_z_ref, dtype=torch.float64, device=dev).clone(),
    )


def normalized_weights(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """softmax(A): normalised weights (N,) (this process's shard), float64."""
    return coll.softmax(log_w.double())


def log_mean_weight(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """logmeanexp(A), float64 scalar."""
    return coll.logsumexp(log_w.double()) - math.log(coll.numel(log_w))


def ess(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """Kish effective sample size (sum w)^2 / sum w^2 = 1 / sum wbar^2, in [1, N]; batched over
    trailing dimensions of ``log_w`` (N, *batch)."""
    a = log_w.double()
    a = a - coll.max(a.max())  # shift first: keeps full precision when |A| is large
    return torch.exp(2 * coll.logsumexp(a) - coll.logsumexp(2 * a))


def ess_fraction(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """ESS / N = E[w]^2 / E[w^2], in [1/N, 1]."""
    return ess(log_w, coll) / coll.numel(log_w)


def cv2(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """Squared coefficient of variation of the weights, E[w^2]/E[w]^2 - 1 = N/ESS - 1."""
    return 1.0 / ess_fraction(log_w, coll) - 1.0


def log_z_estimate(walkers: Walkers, coll: Collective = LOCAL) -> Tensor:
    """Running estimate log Z_hat = log_z_ref + logmeanexp(A)."""
    return walkers.log_z_ref + log_mean_weight(walkers.log_w, coll)


def add_log_weights(walkers: Walkers, increment: Tensor) -> Walkers:
    """A := A + increment (float64)."""
    return replace(walkers, log_w=walkers.log_w + increment.double())


def _take(state: LangevinState, idx: Tensor, coll: Collective) -> LangevinState:
    return LangevinState(coll.take(state.x, idx), coll.take(state.energy, idx), coll.take(state.grad, idx))


def resample(walkers: Walkers, scheme: str, generator: torch.Generator, coll: Collective = LOCAL) -> Walkers:
    """Resample the whole population by its weights; A := 0 and log_z_ref := current log Z estimate.

    Distributed: every process gathers the N log-weights (8 bytes per walker), runs the scheme on the
    global weights with the shared generator (so the ancestors are those one process would draw)
    and receives the walkers of its slots from the processes holding them.
    """
    idx = get_resampler(scheme)(normalized_weights(coll.gather(walkers.log_w)), coll.numel(walkers.log_w), generator)
    return Walkers(_take(walkers.state, idx, coll), torch.zeros_like(walkers.log_w), log_z_estimate(walkers, coll))


def resample_local(walkers: Walkers, scheme: str, generator: torch.Generator, coll: Collective) -> Walkers:
    """Each process resamples its own walkers by their weights; no walker changes process.

    Every walker of process r gets the log-weight logmeanexp_r(A) - logmeanexp(A), so each process keeps
    its share of the total weight and log Z_hat is unchanged (log_z_ref absorbs logmeanexp(A)).  The
    draws come from a per-process generator seeded from one draw of the shared generator.
    """
    local_lme = log_mean_weight(walkers.log_w)

    def check() -> None:
        if not torch.isfinite(local_lme):
            raise ValueError(
                f"local resampling: every walker of process {coll.rank} has zero (or infinite) "
                "weight, so it has nothing to resample from; use resample_scope='global'"
            )

    coll.agree(check)
    seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    local_gen = torch.Generator(generator.device).manual_seed(seed + coll.rank)
    idx = get_resampler(scheme)(normalized_weights(walkers.log_w), walkers.n, local_gen)
    global_lme = log_mean_weight(walkers.log_w, coll)
    log_w = torch.full_like(walkers.log_w, float(local_lme - global_lme))
    return Walkers(walkers.state.index(idx), log_w, walkers.log_z_ref + global_lme)


def maybe_resample(
    walkers: Walkers,
    threshold: float,
    scheme: str,
    generator: torch.Generator,
    coll: Collective = LOCAL,
    scope: str = "global",
) -> tuple[Walkers, bool]:
    """Resample when the global ESS/N < threshold; returns (walkers, whether it resampled).

    scope: "global" (:func:`resample`, the same result as one process) or "local"
    (:func:`resample_local`, no walker traffic between processes).
    """
    if scope not in SCOPES:
        raise ValueError(f"resampling scope must be one of {SCOPES}, got {scope!r}")
    if float(ess_fraction(walkers.log_w, coll)) < threshold:
        step = resample if scope == "global" else resample_local
        return step(walkers, scheme, generator, coll), True
    return walkers, False
