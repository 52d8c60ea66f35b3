"""The weighted walker population: positions, float64 log-weights and log-Z bookkeeping.

All walker-set operations (weights, ESS, log-Z estimate, resampling) live here, as pure functions over
:class:`Walkers`, each with a :class:`~ebmlab.distributed.Collective` (default: one process; with a
distributed one the walkers are an equal shard of the population and every quantity is global).

log Z estimate (standard SMC): log Z_hat = log_z_ref + logmeanexp(A).  At a resampling,
log_z_ref := log Z_hat and A := 0, so the estimate is unchanged by resampling.

Standard error of log Z_hat: the genealogy-based estimator of Lee & Whiteley (2018), valid with
adaptive resampling (Du & Guyader 2021).  Each walker remembers its "Eve", the initial walker it
descends from; after R resamplings, with normalised weights W and S_e the total weight of Eve e,

    Var(Z_hat) / Z^2  ~=  1 - (N / (N - 1))^(R + 1) * (1 - sum_e S_e^2),

and SE(log Z_hat) = sqrt(log(1 + that)): the importance-sampling variance without resampling, plus the
lineages lost after it.  It assumes multinomial resampling: after systematic, stratified or residual
resampling it understates the error (docs/method.md, section 5), so :func:`log_z_se` is NaN there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective
from ..uncertainty import se_from_relvar
from .langevin import LangevinState
from .resampling import SCOPES as SCOPES  # re-exported: the scopes live with the schemes
from .resampling import Resampling, get_resampler
from .summary import Population, WeightSummary, summarize


@dataclass(frozen=True)
class Walkers:
    """A walker population.

    state: positions with cached energy/gradient (N walkers).
    log_w: (N,) float64 log-weights A (any additive constant).
    log_z_ref: () float64, log Z reference carried across resamplings.
    eve: (N,) int64 global index of each walker's initial ancestor, or None before the first
    resampling (every walker its own).  n_resamplings: resamplings so far; multinomial_only: every one
    of them was multinomial (else the genealogy standard error is not available).
    """

    state: LangevinState
    log_w: Tensor
    log_z_ref: Tensor
    eve: Tensor | None = None
    n_resamplings: int | Tensor = 0  # a (B,) tensor of per-group counts for grouped walkers (ebmlab.lvm)
    multinomial_only: bool = True

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


def normalized_weights(log_w: Tensor, coll: Collective = LOCAL, log_norm: Tensor | None = None) -> Tensor:
    """softmax(A): normalised weights (N,) (this process's shard), float64; ``log_norm``: the global
    logsumexp(A) if already known (no communication)."""
    if log_norm is not None:
        return torch.exp(log_w.double() - log_norm)
    return coll.softmax(log_w.double())


def log_mean_weight(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """logmeanexp(A), float64 scalar."""
    return coll.logsumexp(log_w.double()) - math.log(coll.numel(log_w))


def ess(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """Kish effective sample size (sum w)^2 / sum w^2 = 1 / sum wbar^2, in [1, N]; batched over
    trailing dimensions of ``log_w`` (N, *batch).  0 when every weight is zero (all log-weights -inf)."""
    a = log_w.double()
    m = coll.max(a.max())
    a = a - torch.where(m == -math.inf, 0.0, m)  # shift first: keeps full precision when |A| is large
    lse = coll.logsumexp(a)
    return torch.where(lse == -math.inf, 0.0, torch.exp(2 * lse - coll.logsumexp(2 * a)))


def ess_fraction(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """ESS / N = E[w]^2 / E[w^2], in [1/N, 1]."""
    return ess(log_w, coll) / coll.numel(log_w)


def cv2(log_w: Tensor, coll: Collective = LOCAL) -> Tensor:
    """Squared coefficient of variation of the weights, E[w^2]/E[w]^2 - 1 = N/ESS - 1."""
    return 1.0 / ess_fraction(log_w, coll) - 1.0


def log_z_estimate(walkers: Walkers, coll: Collective = LOCAL) -> Tensor:
    """Running estimate log Z_hat = log_z_ref + logmeanexp(A)."""
    return walkers.log_z_ref + log_mean_weight(walkers.log_w, coll)


def population(walkers: Walkers) -> Population:
    """What :func:`~ebmlab.sampling.summary.summarize` needs of ``walkers`` (the genealogy only where
    the standard error exists: multinomial resampling)."""
    return Population(walkers.log_w, walkers.eve, walkers.multinomial_only)


def weight_summary(walkers: Walkers, coll: Collective = LOCAL) -> WeightSummary:
    """The walkers' :class:`~ebmlab.sampling.summary.WeightSummary` (one collective call)."""
    (summary,), _, _ = summarize([population(walkers)], coll)
    assert summary is not None  # a population was given
    return summary


def relvar_from(summary: WeightSummary, n_resamplings: int | Tensor) -> Tensor:
    """Genealogy estimate of Var(Z_hat) / Z^2 from a summary (see the module docstring), float64; with a
    summary of several groups (fields (B,)) ``n_resamplings`` may be a (B,) tensor of per-group counts."""
    rate = math.log1p(1.0 / (summary.n - 1))
    factor: Tensor | float
    if isinstance(n_resamplings, Tensor):
        factor = torch.exp((n_resamplings.double() + 1) * rate)
    else:
        factor = math.exp((n_resamplings + 1) * rate)
    return 1.0 - factor * (1.0 - summary.same)


def log_z_relvar(walkers: Walkers, coll: Collective = LOCAL) -> Tensor:
    """Genealogy estimate of Var(Z_hat) / Z^2 (Lee & Whiteley 2018; see the module docstring), float64."""
    return relvar_from(weight_summary(walkers, coll), walkers.n_resamplings)


def _se(relvar: Tensor, multinomial_only: bool) -> Tensor:
    se = se_from_relvar(relvar)
    return se if multinomial_only else torch.full_like(se, math.nan)


def log_z_se(walkers: Walkers, coll: Collective = LOCAL) -> Tensor:
    """Standard error of :func:`log_z_estimate` in nats: sqrt(log(1 + relative variance)) (the convention of
    :mod:`ebmlab.uncertainty`), float64;
    NaN once the walkers have been resampled by a scheme other than multinomial (see the module)."""
    return _se(log_z_relvar(walkers, coll), walkers.multinomial_only)


def conditional_ess_fraction(log_w: Tensor, increment: Tensor, coll: Collective = LOCAL) -> Tensor:
    """Conditional ESS / N of a proposed log-weight increment a (Zhou, Johansen & Aston 2016):
    (sum_i W_i e^{a_i})^2 / sum_i W_i e^{2 a_i} with W the current normalised weights; in (0, 1],
    1 when a is constant.  It measures how much one step degrades the weights, independently of
    how degenerate they already are."""
    log_wn = log_w.double() - coll.logsumexp(log_w.double())
    a = increment.double()
    return torch.exp(2 * coll.logsumexp(log_wn + a) - coll.logsumexp(log_wn + 2 * a))


def gather_walkers(walkers: Walkers, coll: Collective = LOCAL) -> Walkers:
    """The whole population on every process (a collective call)."""
    g = coll.gather
    eve = None if walkers.eve is None else g(walkers.eve)
    return replace(walkers, state=walkers.state.map(g), log_w=g(walkers.log_w), eve=eve)


def walkers_to_dict(walkers: Walkers) -> dict[str, Any]:
    """Plain tensors for a checkpoint (one process's or a gathered population)."""
    s = walkers.state
    return {
        "x": s.x,
        "energy": s.energy,
        "grad": s.grad,
        "log_w": walkers.log_w,
        "log_z_ref": walkers.log_z_ref,
        "eve": walkers.eve,
        "n_resamplings": walkers.n_resamplings,
        "multinomial_only": walkers.multinomial_only,
    }


def walkers_from_dict(d: dict[str, Any], coll: Collective = LOCAL, device: torch.device | None = None) -> Walkers:
    """Inverse of :func:`walkers_to_dict` for a whole population; this process keeps its shard."""

    def part(t: Tensor) -> Tensor:
        return coll.split(t.to(device))

    eve = None if d["eve"] is None else part(d["eve"])
    state = LangevinState(part(d["x"]), part(d["energy"]), part(d["grad"]))
    return Walkers(
        state, part(d["log_w"]), d["log_z_ref"].to(device), eve, int(d["n_resamplings"]), bool(d["multinomial_only"])
    )


def log_z_report(
    walkers: Walkers, coll: Collective = LOCAL, suffix: str = "", summary: WeightSummary | None = None
) -> dict[str, float]:
    """``log_z_est<suffix>`` and, where the genealogy gives one (multinomial resampling only), ``log_z_se<suffix>``;
    from ``summary`` (the walkers' :func:`weight_summary`) when given, else with one collective call."""
    summary = weight_summary(walkers, coll) if summary is None else summary
    out = {f"log_z_est{suffix}": float(walkers.log_z_ref + summary.log_mean)}
    if walkers.multinomial_only:
        out[f"log_z_se{suffix}"] = float(_se(relvar_from(summary, walkers.n_resamplings), True))
    return out


def add_log_weights(walkers: Walkers, increment: Tensor) -> Walkers:
    """A := A + increment (float64)."""
    return replace(walkers, log_w=walkers.log_w + increment.double())


def resample(walkers: Walkers, scheme: str, generator: torch.Generator, coll: Collective = LOCAL) -> Walkers:
    """Resample the whole population by its weights; A := 0 and log_z_ref := current log Z estimate.

    Distributed: every process gathers the N log-weights (8 bytes per walker), runs the scheme on the
    global weights with the shared generator (so the ancestors are those one process would draw)
    and receives the walkers of its slots from the processes holding them.
    """
    log_w = coll.gather(walkers.log_w)
    idx = get_resampler(scheme)(normalized_weights(log_w), log_w.numel(), generator)
    eve = coll.split(idx if walkers.eve is None else coll.gather(walkers.eve)[idx])
    return Walkers(
        walkers.state.map(lambda t: coll.take(t, idx)),
        torch.zeros_like(walkers.log_w),
        walkers.log_z_ref + log_mean_weight(log_w),
        eve,
        walkers.n_resamplings + 1,
        walkers.multinomial_only and scheme == "multinomial",
    )


def resample_local(walkers: Walkers, scheme: str, generator: torch.Generator, coll: Collective) -> Walkers:
    """Each process resamples its own walkers by their weights; no walker changes process.

    Every walker of process r gets the log-weight logmeanexp_r(A) - logmeanexp(A), so each process keeps
    its share of the total weight and log Z_hat is unchanged (log_z_ref absorbs logmeanexp(A)).  The
    draws come from a per-process generator seeded from one draw of the shared generator.  The
    genealogy standard error treats this like a global resampling (an approximation).
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
    eve = idx + coll.rank * walkers.n if walkers.eve is None else walkers.eve[idx]
    return Walkers(
        walkers.state.index(idx),
        log_w,
        walkers.log_z_ref + global_lme,
        eve,
        walkers.n_resamplings + 1,
        walkers.multinomial_only and scheme == "multinomial",
    )


def maybe_resample(
    walkers: Walkers,
    threshold: float,
    scheme: str,
    generator: torch.Generator,
    coll: Collective = LOCAL,
    scope: str = "global",
    summary: WeightSummary | None = None,
) -> tuple[Walkers, bool]:
    """Resample when the global ESS/N < threshold; returns (walkers, whether it resampled).

    scope: "global" (:func:`resample`, the same result as one process) or "local"
    (:func:`resample_local`, no walker traffic between processes).  summary: the walkers'
    :func:`weight_summary` if already at hand (else computed: one collective call).
    """
    Resampling(threshold, scheme, scope)  # validates the three
    summary = weight_summary(walkers, coll) if summary is None else summary
    if not bool(summary.max > -math.inf):  # also False for NaN
        raise ValueError(
            "no walker has a usable weight (the log-weights are all -inf, or NaN): there is nothing to resample "
            "from; the energy changed too much for the walkers to follow (smaller steps or updates)"
        )
    if float(summary.ess_fraction) < threshold:
        step = resample if scope == "global" else resample_local
        return step(walkers, scheme, generator, coll), True
    return walkers, False
