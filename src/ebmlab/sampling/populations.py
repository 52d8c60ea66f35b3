"""The gradient's walkers and the estimator population, advanced together: one implementation for every
weighted trainer (:class:`~ebmlab.training.Trainer` and the latent ``jarzynski`` prior sampler).

The gradient's walkers feed the parameter update, so their log Z estimate is biased by that feedback
(docs/method.md, "The feedback bias").  The estimator population moves with the same kernel along the same
energy path but never enters the gradient: its log Z is unbiased given the path, and, resampled
multinomially, it carries the genealogy standard error.  :func:`advance_populations` is one iteration of
both: take each to the new energy and move it, check that nothing diverged, resample each on its own
ESS, and summarise the weights (:func:`log_z_report`).

Order of the random draws: the walkers' move, the ``after_walkers`` hook (e.g. a CD reset), the choice of
the estimator walkers that move, the estimator's move, the walkers' resampling, the estimator's.

Communication: the checks, both populations' weight summaries and the acceptance counts travel in one
all_gather; a resampling adds its own exchange and one more gather for the new summaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective, NoiseRows
from ..errors import DIVERGENCE_BOUND, check_worst, worst_values
from . import smc
from .diagnostics import increment_split, parameter_work
from .langevin import EnergyFn
from .preconditioner import Preconditioner
from .resampling import Resampling
from .summary import WeightSummary, summarize
from .walkers import Walkers, log_z_report, maybe_resample, population

Summaries = tuple[WeightSummary, "WeightSummary | None"]
Choice = Callable[[int], tuple["Tensor | None", "NoiseRows | None"]]
WALKER_RESAMPLING = Resampling()  # the gradient walkers' default: systematic at ESS/N < 0.5
ESTIMATOR_RESAMPLING = Resampling(0.5, "multinomial")  # multinomial: the genealogy standard error needs it


@dataclass(frozen=True)
class Populations:
    """The gradient's walkers and the estimator population (None: none)."""

    walkers: Walkers
    estimator: Walkers | None = None

    def summaries(self, coll: Collective = LOCAL) -> Summaries:
        """The weight summaries of both populations (one collective call)."""
        (s_walk, s_est), _, _ = summarize(_pops(self), coll)
        assert s_walk is not None  # the gradient's walkers are always summarised
        return s_walk, s_est


@dataclass(frozen=True)
class PopulationMove:
    """How both populations move at each energy change: the :class:`~ebmlab.sampling.smc.Move`; whether
    the gradient's walkers carry weights; their :class:`~ebmlab.sampling.resampling.Resampling` (None:
    never resampled) and the estimator's (multinomial by default: the genealogy standard error needs it);
    ``bound``: |energy| beyond it counts as divergence; ``precondition``: both move in the fixed coordinates of
    this :class:`~ebmlab.sampling.preconditioner.Preconditioner` (None: plain); ``split_increments``: measure
    the variance of each weighted population's increment and of its parameter and kernel parts
    (:func:`~ebmlab.sampling.diagnostics.increment_split`; one more energy evaluation per walker)."""

    move: smc.Move
    weighted: bool = True
    resampling: Resampling | None = WALKER_RESAMPLING
    estimator_resampling: Resampling = ESTIMATOR_RESAMPLING
    bound: float = DIVERGENCE_BOUND
    precondition: Preconditioner | None = None
    split_increments: bool = False


@dataclass(frozen=True)
class PopulationsInfo:
    """What :func:`advance_populations` did: the gradient walkers' acceptance rate (None for ULA or when no
    walker moved by Metropolis), whether each population was resampled (the estimator's: None without
    one), both populations' weight summaries after resampling, and with ``split_increments`` the increment
    variances (keys ``inc_var*`` for the weighted gradient walkers, ``est_inc_var*`` for the estimator)."""

    accept_rate: float | None
    resampled: bool
    estimator_resampled: bool | None
    summaries: Summaries
    increments: dict[str, float] = field(default_factory=dict)


def _pops(pops: Populations) -> list:
    return [population(pops.walkers), None if pops.estimator is None else population(pops.estimator)]


def advance_populations(
    pops: Populations,
    energy: EnergyFn,
    how: PopulationMove,
    generator: torch.Generator,
    *,
    iteration: int,
    noise: torch.Generator | None = None,
    subset: Tensor | None = None,
    rows: NoiseRows | None = None,
    choose_estimator: Choice | None = None,
    after_walkers: Callable[[Walkers], Walkers] | None = None,
    coll: Collective = LOCAL,
) -> tuple[Populations, PopulationsInfo]:
    """Take both populations from their last energy to ``energy`` and move them, check them, resample each
    on its own ESS (see the module docstring for the order of the draws).

    generator: the resampling draws (and the moves' noise unless ``noise`` is given).  iteration: named by a
    :class:`~ebmlab.errors.DivergenceError` when an energy or log-weight is non-finite or beyond
    ``how.bound``.  subset, rows: the gradient walkers that move and their noise rows (None = all).
    choose_estimator(n_local): the estimator walkers that move and their rows (default: all).
    after_walkers: applied to the gradient's walkers right after their move (e.g. a CD reset to data).
    """
    noise = generator if noise is None else noise
    candidates = {"": pops.walkers if how.weighted else None, "est_": pops.estimator}
    before = {k: w for k, w in candidates.items() if w is not None and how.split_increments}
    work = {k: parameter_work(w.state.energy, energy, w.x) for k, w in before.items()}  # U_k - U_{k+1}, fixed x
    pre = how.precondition
    walkers, info = smc.advance(
        pops.walkers, energy, how.move, noise, subset=subset, rows=rows, weighted=how.weighted, precondition=pre
    )
    if after_walkers is not None:
        walkers = after_walkers(walkers)
    checks = {"walker energies": walkers.state.energy}
    finite = {"walker gradients": walkers.state.grad, "log-weights": walkers.log_w}
    estimator = pops.estimator
    if estimator is not None:
        est_subset, est_rows = (None, None) if choose_estimator is None else choose_estimator(estimator.n)
        estimator, _ = smc.advance(
            estimator, energy, how.move, noise, subset=est_subset, rows=est_rows, precondition=pre
        )
        checks["estimator energies"] = estimator.state.energy
        finite["estimator log-weights"] = estimator.log_w
    new = Populations(walkers, estimator)
    (s_walk, s_est), worst, counts = summarize(_pops(new), coll, worst_values(checks | finite), info.counts)
    assert s_walk is not None and worst is not None  # the walkers and the values to check were given
    check_worst(iteration, list(checks), list(finite), worst, how.bound)
    increments: dict[str, float] = {}
    for key, moved in (("", walkers), ("est_", estimator)):
        if key in before and moved is not None:  # before resampling: the increment of this update alone
            old = before[key].log_w.double()
            split = increment_split(old, work[key], moved.log_w.double() - old, coll)
            increments |= {key + k: v for k, v in split.items()}
    resampled, est_resampled = False, None
    if how.weighted and how.resampling is not None:
        walkers, resampled = _resample(walkers, how.resampling, generator, coll, s_walk)
    if estimator is not None:
        assert s_est is not None  # summarised with the estimator
        estimator, est_resampled = _resample(estimator, how.estimator_resampling, generator, coll, s_est)
    new = Populations(walkers, estimator)
    summaries = new.summaries(coll) if resampled or est_resampled else (s_walk, s_est)
    accept = None if counts is None else float(counts[0] / counts[1])
    return new, PopulationsInfo(accept, resampled, est_resampled, summaries, increments)


def _resample(
    walkers: Walkers, how: Resampling, generator: torch.Generator, coll: Collective, summary: WeightSummary
) -> tuple[Walkers, bool]:
    return maybe_resample(walkers, how.threshold, how.scheme, generator, coll, how.scope, summary)


def estimates(pops: Populations, summaries: Summaries, weighted: bool = True) -> dict[str, float]:
    """The populations' report (no communication): ``ess_frac`` of the gradient's walkers; with an
    estimator population its ``log_z_est`` / ``log_z_se`` (nats) and ``est_ess_frac``; for weighted walkers
    their own estimate, as ``log_z_est_coupled`` (biased by feedback) when an estimator exists."""
    s_walk, s_est = summaries
    out = {"ess_frac": float(s_walk.ess_fraction)}
    if pops.estimator is not None:
        assert s_est is not None  # kept with the estimator population
        out |= log_z_report(pops.estimator, summary=s_est)
        out["est_ess_frac"] = float(s_est.ess_fraction)
    if weighted:
        out |= log_z_report(pops.walkers, suffix="_coupled" if pops.estimator is not None else "", summary=s_walk)
    return out


__all__ = ["PopulationMove", "Populations", "PopulationsInfo", "advance_populations", "estimates"]
