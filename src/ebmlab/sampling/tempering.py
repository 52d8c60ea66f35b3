"""Tempering along the geometric path exp(-U_b), b from 0 to 1, on the weighted-walker engine of
:mod:`ebmlab.sampling.smc`, with a schedule adapted by a pilot run.

An SMC sampler along the geometric path exp(-U_b) from b = 0 to 1 needs a schedule: the temperatures, a
step size that suits each, and (for ill-conditioned targets) a preconditioner per temperature.  Choosing
them from the walkers that carry the estimate (the next b where the conditional ESS reaches a target, the
step from their acceptance, the preconditioner from their moments) makes the kernels depend on those
walkers, and the estimate of Z is then no longer unbiased (measured: docs/method.md, section 6).  Here a
pilot population adapts the schedule and a fresh, independent population runs it with the kernels frozen:
standard SMC with a fixed sequence of invariant kernels, so E[Z_hat] = Z holds exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, replace

import torch
from torch import Tensor

from ..deprecation import warn_renamed
from .langevin import EnergyFn, check_step_size
from .preconditioner import Preconditioner
from .resampling import multinomial_below
from .smc import Move, MoveInfo, anneal, start, step
from .walkers import Walkers, conditional_ess_fraction, normalized_weights


def geometric_path(energy0: EnergyFn, energy1: EnergyFn, beta: float) -> EnergyFn:
    """The tempered energy U_b(x) = (1 - b) U_0(x) + b U_1(x), (N,) nats."""
    return lambda x: (1 - beta) * energy0(x) + beta * energy1(x)


@dataclass(frozen=True)
class Temperature:
    """One rung of a tempering schedule: inverse temperature beta in (0, 1], the kernel's step size there,
    and the preconditioner of its moves (None: plain coordinates)."""

    beta: float
    step_size: float
    precondition: Preconditioner | None = None

    def __post_init__(self) -> None:
        ok = isinstance(self.beta, (int, float)) and not isinstance(self.beta, bool) and math.isfinite(self.beta)
        if not (ok and 0 < self.beta <= 1):
            raise ValueError(f"a temperature's beta must lie in (0, 1] (b = 0 is the start), got {self.beta!r}")
        check_step_size(self.step_size)


@dataclass(frozen=True)
class Tempering:
    """How the pilot adapts a schedule (:func:`adapt_schedule`).

    cess_target: each next temperature is the largest b whose reweighting keeps the conditional ESS / N of
    the pilot walkers >= this (Zhou, Johansen & Aston 2016); pilot_steps: kernel steps per temperature in
    the pilot (None: as many as the run's move; the old name ``pilot_moves=`` still works, with a
    DeprecationWarning); accept_target: the pilot scales its step size by
    exp(2 (acceptance - target)) after each temperature (MALA; ULA keeps it); precondition: move in the
    coordinates of the pilot walkers' weighted mean and covariance at each temperature (flat walkers, N > d
    advisable); max_temperatures: refuse to go on beyond this many.
    """

    cess_target: float = 0.95
    pilot_steps: int | None = None
    accept_target: float = 0.65
    precondition: bool = True
    max_temperatures: int = 10_000
    pilot_moves: InitVar[int | None] = None

    def __post_init__(self, pilot_moves: int | None) -> None:
        if pilot_moves is not None:
            warn_renamed("Tempering(pilot_moves=)", "Tempering(pilot_steps=)")
            if self.pilot_steps is not None:
                raise TypeError("Tempering(): pass pilot_steps= (pilot_moves= is its old name), not both")
            object.__setattr__(self, "pilot_steps", pilot_moves)
        if not 0 < self.cess_target < 1:
            raise ValueError(f"cess_target must lie in (0, 1), got {self.cess_target!r}")
        if not 0 < self.accept_target < 1:
            raise ValueError(f"accept_target must lie in (0, 1), got {self.accept_target!r}")
        for name in ("pilot_steps", "max_temperatures"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def next_temperature(log_w: Tensor, work: Tensor, beta: float, cess_target: float, tol: float = 1e-10) -> float:
    """The largest b in (beta, 1] at which the reweighting increment -(b - beta) * work keeps the conditional
    ESS / N of walkers with log-weights ``log_w`` (N,) at least ``cess_target``; work (N,) = U_1 - U_0 at the
    walkers.  Found by bisection (the conditional ESS falls as b grows); at least beta + tol."""
    if bool(conditional_ess_fraction(log_w, -(1.0 - beta) * work) >= cess_target):
        return 1.0
    lo, hi = beta, 1.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if bool(conditional_ess_fraction(log_w, -(mid - beta) * work) >= cess_target):
            lo = mid
        else:
            hi = mid
    return max(lo, beta + tol)


def adapt_in_place(
    energy0: EnergyFn,
    energy1: EnergyFn,
    x: Tensor,
    tempering: Tempering,
    move: Move,
    generator: torch.Generator,
    *,
    ess_threshold: float | None = 0.5,
) -> tuple[list[Temperature], Walkers]:
    """The pilot: walkers from exact draws x (N, *event) of exp(-U_0)/Z_0 are tempered to exp(-U_1) along the
    geometric path, adapting each temperature, step size and preconditioner (see :class:`Tempering`;
    ``move`` gives the kernel and the first step size), and resampled multinomially when ESS/N falls below
    ``ess_threshold``.  Returns the schedule and the pilot's walkers.  Their log Z estimate is biased (each kernel
    was chosen from the walkers it then moves): :func:`adapt_schedule` keeps only the schedule, for
    :func:`run_schedule` on independent walkers; the walkers are returned to measure that bias."""
    if tempering.precondition and x.dim() != 2:
        raise ValueError(
            f"preconditioned tempering needs flat walkers (N, d), got {tuple(x.shape)}: flatten the event shape "
            "or use Tempering(precondition=False)"
        )
    walkers = start(energy0, x.detach())
    steps = move.n_steps if tempering.pilot_steps is None else tempering.pilot_steps
    h, beta = move.step_size, 0.0
    schedule: list[Temperature] = []
    while beta < 1.0:
        if len(schedule) == tempering.max_temperatures:
            raise ValueError(
                f"the pilot reached max_temperatures={tempering.max_temperatures} at beta = {beta:.3g}: lower "
                "cess_target or raise max_temperatures"
            )
        with torch.no_grad():
            work = (energy1(walkers.x) - energy0(walkers.x)).double()
        if not bool(torch.isfinite(work).all()):
            raise ValueError(f"U_1 - U_0 is not finite at some walkers (beta = {beta:.3g}): check the energies")
        b = next_temperature(walkers.log_w, work, beta, tempering.cess_target)
        pre = None
        if tempering.precondition:
            weights = normalized_weights(walkers.log_w.double() - (b - beta) * work)
            pre = Preconditioner.from_moments(walkers.x, weights)
        rung = Temperature(b, h, pre)
        walkers, info = step(
            walkers,
            geometric_path(energy0, energy1, b),
            replace(move, step_size=h, n_steps=steps),
            generator,
            resampling=multinomial_below(ess_threshold),
            precondition=pre,
        )
        schedule.append(rung)
        if info.accept_rate is not None:
            h = h * math.exp(2.0 * (float(info.accept_rate) - tempering.accept_target))
        beta = b
    return schedule, walkers


def adapt_schedule(
    energy0: EnergyFn,
    energy1: EnergyFn,
    x: Tensor,
    tempering: Tempering,
    move: Move,
    generator: torch.Generator,
    *,
    ess_threshold: float | None = 0.5,
) -> list[Temperature]:
    """The schedule of :func:`adapt_in_place` (the pilot run on x), without its biased estimate."""
    return adapt_in_place(energy0, energy1, x, tempering, move, generator, ess_threshold=ess_threshold)[0]


def run_schedule(
    energy0: EnergyFn,
    energy1: EnergyFn,
    walkers: Walkers,
    schedule: Sequence[Temperature],
    move: Move,
    generator: torch.Generator,
    *,
    ess_threshold: float | None = 0.5,
    progress: bool = False,
) -> tuple[Walkers, list[MoveInfo]]:
    """Temper ``walkers`` (started under energy0) along a fixed ``schedule`` with ``move``'s kernel and number of
    steps at each rung's step size and preconditioner, resampling multinomially when ESS/N < ``ess_threshold``
    (None = never)."""
    betas = [t.beta for t in schedule]
    if not betas or betas[-1] != 1.0 or any(b >= c for b, c in zip(betas, betas[1:])):
        raise ValueError(f"a tempering schedule must be non-empty, increasing and end at beta = 1, got betas {betas}")
    return anneal(
        walkers,
        [geometric_path(energy0, energy1, t.beta) for t in schedule],
        [replace(move, step_size=t.step_size) for t in schedule],
        generator,
        resampling=multinomial_below(ess_threshold),
        progress=progress,
        preconditioners=[t.precondition for t in schedule],
    )


__all__ = ["Temperature", "Tempering", "adapt_schedule", "geometric_path", "next_temperature", "run_schedule"]
