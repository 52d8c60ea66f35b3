"""One weighted-walker engine: move (any registered kernel), reweight across an energy change,
resample on ESS, and keep log Z with its standard error.

The walkers' cache (energy and input-gradient) always refers to the energy they were last evaluated
under.  :func:`advance` takes them to a new energy (the same module after a parameter update, or the
next energy of a user's schedule) and moves them; the log-weights gain exactly what makes

    E[phi(X) e^A] / E[e^A] = E_new[phi]   and   E[e^A] = Z_new / Z_start

hold for the whole path, whatever the step size:

- ``ula`` (not invariant): the first step moves with the cached (old) gradient and is evaluated under
  the new energy; its increment U_old(x) - U_new(y) + log q_new(y -> x) - log q_old(x -> y) is the
  Jarzynski/SMC increment of Carbone et al. (2023).  Later steps add the fixed-energy (MALA-ratio)
  term.  One energy forward + backward per walker per step.
- ``mala`` (invariant): the walkers are first reweighted in place by the AIS work U_old(x) - U_new(x),
  then moved by Metropolis-adjusted steps that leave exp(-U_new) invariant, which add nothing to the
  weights (Del Moral, Doucet & Jasra 2006).  One extra evaluation per update (the reweighting).

Walkers outside ``subset`` are only reweighted (the identity kernel).  :func:`step` adds ESS-triggered
resampling; :func:`anneal` runs a whole schedule (AIS is :func:`anneal` over a geometric path).  Kernels
can move in affine coordinates (a :class:`~ebmlab.sampling.langevin.Preconditioner`), and
:func:`adapt_schedule` / :func:`run_schedule` temper along the geometric path on a schedule (temperatures,
step sizes, preconditioners) adapted by an independent pilot population, which keeps Z_hat unbiased.

Usage along your own schedule::

    walkers = start(energies[0], x0, log_z0)              # exact draws from exp(-U_0) / Z_0
    for energy in energies[1:]:
        walkers, info = step(walkers, energy, Move("mala", step_size=0.05, n_steps=2), generator)
    log_z_estimate(walkers), log_z_se(walkers)            # log Z of the last energy, nats
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..distributed import LOCAL, Collective, NoiseRows
from .langevin import EnergyFn, LangevinState, Preconditioner, check_step_size, init_state, mala, refresh, ula
from .walkers import (
    SCOPES,
    Walkers,
    add_log_weights,
    conditional_ess_fraction,
    make_walkers,
    maybe_resample,
    normalized_weights,
)

KernelStep = Callable[..., tuple[LangevinState, "Tensor | None", "Tensor | None"]]


@dataclass(frozen=True)
class Kernel:
    """A Langevin kernel as the engine drives it.

    step(state, energy, step_size, generator, noise_std, rows, weighted, compile) -> (state, log-weight
    increment or None, accepted (N,) bool or None).  invariant: the kernel leaves exp(-U) invariant at a fixed
    energy, so walkers are reweighted before moving and the move adds no weight.
    """

    name: str
    step: KernelStep
    invariant: bool


def _ula_step(state, energy, step_size, generator, noise_std, rows, weighted, compile):
    new, inc = ula(state, energy, step_size, generator, noise_std, rows, weighted, compile)
    return new, inc, None


def _mala_step(state, energy, step_size, generator, noise_std, rows, weighted, compile):
    new, accepted, _ = mala(state, energy, step_size, generator, noise_std, rows, compile)
    return new, None, accepted


# The samplers the engine drives, by name (the ``kernel`` of a Move or a NegativePhase); register a
# Kernel here to make another one available everywhere (training, AIS, users' schedules).
SAMPLERS: dict[str, Kernel] = {
    "ula": Kernel("ula", _ula_step, invariant=False),
    "mala": Kernel("mala", _mala_step, invariant=True),
}


def get_sampler(name: str) -> Kernel:
    """Look up a kernel by name; a clear ValueError lists the valid names."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown kernel {name!r}; choose one of {sorted(SAMPLERS)}") from None


@dataclass(frozen=True)
class Move:
    """How walkers move at each energy: kernel name, step size h, noise scale (default sqrt(2h)), the
    number of kernel steps, and whether the step runs compiled (:mod:`.compiled`: one graph per energy
    object and shape, so for a fixed module whose parameters change, not for a schedule of new energies)."""

    kernel: str = "ula"
    step_size: float = 0.1
    noise_std: float | None = None
    n_steps: int = 1
    compile: bool = False

    def __post_init__(self) -> None:
        get_sampler(self.kernel)
        check_step_size(self.step_size, self.noise_std)
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {self.n_steps!r}")


@dataclass(frozen=True)
class MoveInfo:
    """What one :func:`advance` / :func:`step` did: Metropolis acceptance rate over the moved walkers
    and steps (a float64 tensor, None for ULA), whether the walkers were resampled, and this process's
    acceptance counts (accepted, proposed) as a float64 (2,) tensor (None for ULA), for callers that
    reduce them together with other quantities."""

    accept_rate: Tensor | None = None
    resampled: bool = False
    counts: Tensor | None = None


def start(energy: EnergyFn, x: Tensor, log_z0: float | Tensor = 0.0) -> Walkers:
    """Equal-weight walkers at x (N, *event), cached under ``energy``; ``log_z0``: log Z of the
    distribution x was drawn from (exactly), so that :func:`~ebmlab.sampling.walkers.log_z_estimate`
    is absolute.  A ValueError names non-finite positions, energies or gradients."""
    if not bool(torch.isfinite(x).all()):
        raise ValueError("the starting positions contain NaN or infinite values")
    state = init_state(energy, x)
    bad = int((~(torch.isfinite(state.energy) & torch.isfinite(state.grad.flatten(1)).all(1))).sum())
    if bad:
        raise ValueError(f"the energy or its gradient is NaN or infinite at {bad} starting point(s): check the energy")
    return make_walkers(state, log_z0)


def _complement(n: int, subset: Tensor) -> Tensor:
    keep = torch.ones(n, dtype=torch.bool, device=subset.device)
    keep[subset] = False
    return keep.nonzero().squeeze(1)


def advance(
    walkers: Walkers,
    energy: EnergyFn,
    move: Move,
    generator: torch.Generator,
    *,
    subset: Tensor | None = None,
    rows: NoiseRows | None = None,
    weighted: bool = True,
    coll: Collective = LOCAL,
    precondition: Preconditioner | None = None,
) -> tuple[Walkers, MoveInfo]:
    """Take walkers cached under their last energy to ``energy`` and move them (see the module docstring).

    subset: indices (M,) of the walkers that move (None = all); the others are only reweighted.
    rows: the moving walkers' rows in a population-wide noise draw (walkers split across processes).
    weighted: update the log-weights (False: unweighted walkers, e.g. PCD/CD; no increment computed).
    coll: reduces the acceptance counts over processes (LOCAL: this process's rate; the counts are in
    the returned :class:`MoveInfo` either way).  precondition: run the kernel steps in the coordinates
    of this :class:`~ebmlab.sampling.langevin.Preconditioner` (flat walkers, not compiled); the weights
    are unchanged by it.  On return every walker is cached under ``energy``.
    """
    kernel = get_sampler(move.kernel)
    if precondition is not None and move.compile:
        raise ValueError("a preconditioned move cannot run compiled (its energy is a new function per map)")
    state, n = walkers.state, walkers.n
    inc = None
    if kernel.invariant:
        state, inc = refresh(state, energy)
    moving = state if subset is None else state.index(subset)
    move_energy = energy
    if precondition is not None:
        moving, move_energy = precondition.to_u(moving), precondition.energy(energy)
    moved_inc = None
    accepted = []
    for _ in range(move.n_steps):
        moving, step_inc, acc = kernel.step(
            moving,
            move_energy,
            move.step_size,
            generator,
            move.noise_std,
            rows,
            weighted and not kernel.invariant,
            move.compile,
        )
        if step_inc is not None:
            moved_inc = step_inc if moved_inc is None else moved_inc + step_inc
        if acc is not None:
            accepted.append(acc)
    if precondition is not None:
        moving = precondition.to_x(moving)
    if subset is None:
        state, inc = moving, (moved_inc if inc is None else inc)
    elif kernel.invariant:
        state = state.merge(subset, moving)
    else:
        rest = _complement(n, subset)
        still, still_inc = refresh(state.index(rest), energy)
        state = state.merge(subset, moving).merge(rest, still)
        if weighted:
            inc = torch.zeros(n, dtype=torch.float64, device=still_inc.device)
            inc = inc.index_copy(0, subset, moved_inc).index_copy(0, rest, still_inc)
    walkers = replace(walkers, state=state)
    if weighted:
        walkers = add_log_weights(walkers, inc)
    if not accepted:
        return walkers, MoveInfo()
    n_accepted = torch.stack(accepted).double().sum()  # stays on the walkers' device: no host synchronisation
    counts = torch.stack([n_accepted, n_accepted.new_tensor(float(len(accepted) * moving.x.shape[0]))])
    total = coll.sum(counts)
    return walkers, MoveInfo(accept_rate=total[0] / total[1], counts=counts)


def step(
    walkers: Walkers,
    energy: EnergyFn,
    move: Move,
    generator: torch.Generator,
    *,
    ess_threshold: float | None = 0.5,
    resampler: str = "systematic",
    subset: Tensor | None = None,
    rows: NoiseRows | None = None,
    coll: Collective = LOCAL,
    scope: str = "global",
    precondition: Preconditioner | None = None,
) -> tuple[Walkers, MoveInfo]:
    """:func:`advance` (weighted) then resample when the global ESS/N < ``ess_threshold`` (None = never)."""
    walkers, info = advance(
        walkers, energy, move, generator, subset=subset, rows=rows, coll=coll, precondition=precondition
    )
    if ess_threshold is None:
        return walkers, info
    walkers, resampled = maybe_resample(walkers, ess_threshold, resampler, generator, coll, scope)
    return walkers, replace(info, resampled=resampled)


def anneal(
    walkers: Walkers,
    energies: Iterable[EnergyFn],
    move: Move | Sequence[Move],
    generator: torch.Generator,
    *,
    ess_threshold: float | None = None,
    resampler: str = "systematic",
    progress: bool = False,
    preconditioners: Sequence[Preconditioner | None] | None = None,
) -> tuple[Walkers, list[MoveInfo]]:
    """Run :func:`step` along a schedule of energies (the walkers start cached under the one before the
    first); ``move``: one :class:`Move` for every energy or one per energy; ``preconditioners``: one (or
    None) per energy.  Returns the final walkers and one :class:`MoveInfo` per energy."""
    if ess_threshold is not None and not 0 < ess_threshold <= 1:
        raise ValueError(f"ess_threshold must lie in (0, 1] or be None, got {ess_threshold!r}")
    energies = list(energies)
    moves = [move] * len(energies) if isinstance(move, Move) else list(move)
    pres = [None] * len(energies) if preconditioners is None else list(preconditioners)
    if len(moves) != len(energies) or len(pres) != len(energies):
        raise ValueError(
            f"{len(energies)} energies need as many moves and preconditioners, got {len(moves)} and {len(pres)}"
        )
    infos = []
    for energy, mv, pre in tqdm(
        list(zip(energies, moves, pres)), desc="anneal", disable=None if progress else True, leave=False
    ):
        walkers, info = step(
            walkers, energy, mv, generator, ess_threshold=ess_threshold, resampler=resampler, precondition=pre
        )
        infos.append(info)
    return walkers, infos


def geometric_path(energy0: EnergyFn, energy1: EnergyFn, beta: float) -> EnergyFn:
    """The tempered energy U_b(x) = (1 - b) U_0(x) + b U_1(x), (N,) nats."""
    return lambda x: (1 - beta) * energy0(x) + beta * energy1(x)


# ----------------------------------------------------------------------------------------------------------
# Adaptive tempering with a pilot run
#
# An SMC sampler along the geometric path exp(-U_b) from b = 0 to 1 needs a schedule: the temperatures, a
# step size that suits each, and (for ill-conditioned targets) a preconditioner per temperature.  Choosing
# them from the walkers that carry the estimate (the next b where the conditional ESS reaches a target, the
# step from their acceptance, the preconditioner from their moments) makes the kernels depend on those
# walkers, and the estimate of Z is then no longer unbiased: on a 16-D linear-Gaussian latent model with a
# closed-form marginal (784 observed dimensions, posterior standard deviations 0.05 to 0.7) it came out 1.9 to
# 2.8 nats *above* the truth.  Here a pilot population adapts the schedule and a fresh, independent population
# runs it with the kernels frozen: standard SMC with a fixed sequence of invariant kernels, so E[Z_hat] = Z
# holds exactly (the same model: within 0.2 nats, one standard error).
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Temperature:
    """One rung of a tempering schedule: inverse temperature beta in (0, 1], the kernel's step size there,
    and the preconditioner of its moves (None: plain coordinates)."""

    beta: float
    step_size: float
    precondition: Preconditioner | None = None


@dataclass(frozen=True)
class Tempering:
    """How the pilot adapts a schedule (:func:`adapt_schedule`).

    cess_target: each next temperature is the largest b whose reweighting keeps the conditional ESS / N of
    the pilot walkers >= this (Zhou, Johansen & Aston 2016); pilot_moves: kernel steps per temperature in
    the pilot (None: as many as the run); accept_target: the pilot scales its step size by
    exp(2 (acceptance - target)) after each temperature (MALA; ULA keeps it); precondition: move in the
    coordinates of the pilot walkers' weighted mean and covariance at each temperature (flat walkers, N > d
    advisable); max_temperatures: refuse to go on beyond this many.
    """

    cess_target: float = 0.95
    pilot_moves: int | None = None
    accept_target: float = 0.65
    precondition: bool = True
    max_temperatures: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.cess_target < 1:
            raise ValueError(f"cess_target must lie in (0, 1), got {self.cess_target!r}")
        if not 0 < self.accept_target < 1:
            raise ValueError(f"accept_target must lie in (0, 1), got {self.accept_target!r}")
        for name in ("pilot_moves", "max_temperatures"):
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
    """The pilot: walkers from exact draws x (N, *event) of exp(-U_0)/Z_0 are tempered to exp(-U_1) along the
    geometric path, adapting each temperature, step size and preconditioner (see :class:`Tempering`;
    ``move`` gives the kernel and the first step size), and resampled multinomially when ESS/N falls below
    ``ess_threshold``.  Returns the schedule for :func:`run_schedule` on independent walkers; its estimate is
    discarded (it would be biased)."""
    if tempering.precondition and x.dim() != 2:
        raise ValueError(
            f"preconditioned tempering needs flat walkers (N, d), got {tuple(x.shape)}: flatten the event shape "
            "or use Tempering(precondition=False)"
        )
    walkers = start(energy0, x.detach())
    steps = move.n_steps if tempering.pilot_moves is None else tempering.pilot_moves
    h, beta, schedule = move.step_size, 0.0, []
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
            ess_threshold=ess_threshold,
            resampler="multinomial",
            precondition=pre,
        )
        schedule.append(rung)
        if info.accept_rate is not None:
            h = h * math.exp(2.0 * (float(info.accept_rate) - tempering.accept_target))
        beta = b
    return schedule


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
    if not schedule or schedule[-1].beta != 1.0:
        raise ValueError("a tempering schedule must be non-empty and end at beta = 1")
    return anneal(
        walkers,
        [geometric_path(energy0, energy1, t.beta) for t in schedule],
        [replace(move, step_size=t.step_size) for t in schedule],
        generator,
        ess_threshold=ess_threshold,
        resampler="multinomial",
        progress=progress,
        preconditioners=[t.precondition for t in schedule],
    )


__all__ = [
    "SAMPLERS",
    "SCOPES",
    "Kernel",
    "Move",
    "MoveInfo",
    "Temperature",
    "Tempering",
    "adapt_schedule",
    "advance",
    "anneal",
    "geometric_path",
    "get_sampler",
    "next_temperature",
    "run_schedule",
    "start",
    "step",
]
