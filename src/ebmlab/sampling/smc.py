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
can move in affine coordinates (a :class:`~ebmlab.sampling.preconditioner.Preconditioner`); tempering on a schedule
adapted by a pilot run is :mod:`ebmlab.sampling.tempering`.

Usage along your own schedule::

    walkers = start(energies[0], x0, log_z0)              # exact draws from exp(-U_0) / Z_0
    for energy in energies[1:]:
        walkers, info = step(walkers, energy, Move("mala", step_size=0.05, n_steps=2), generator)
    log_z_estimate(walkers), log_z_se(walkers)            # log Z of the last energy, nats
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..deprecation import renamed
from ..distributed import LOCAL, Collective, NoiseRows
from .kernels import KERNELS, Kernel, Move, MoveInfo, get_kernel, move_with
from .langevin import EnergyFn, init_state, refresh
from .preconditioner import Preconditioner
from .resampling import SCOPES, Resampling, resampling_with
from .walkers import (
    Walkers,
    add_log_weights,
    make_walkers,
    maybe_resample,
)


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


def check_subset(subset: Tensor, n: int) -> None:
    """Raise ValueError unless ``subset`` is a non-empty 1-D integer tensor of indices in [0, n)."""
    if not isinstance(subset, Tensor) or subset.dim() != 1 or subset.is_floating_point() or subset.dtype == torch.bool:
        raise ValueError(f"subset must be a 1-D integer tensor of walker indices, got {subset!r:.80}")
    lo, hi = torch.stack([subset.min(), subset.max()]).tolist() if subset.numel() else (0, -1)
    if not subset.numel() or lo < 0 or hi >= n:
        raise ValueError(f"subset must hold walker indices in [0, {n}), got {subset.numel()} from {lo} to {hi}")


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
    of this :class:`~ebmlab.sampling.preconditioner.Preconditioner` (flat walkers, not compiled); the weights
    are unchanged by it.  On return every walker is cached under ``energy``.
    """
    kernel = get_kernel(move.kernel)
    if precondition is not None and move.compile:
        raise ValueError("a preconditioned move cannot run compiled (its energy is a new function per map)")
    state, n = walkers.state, walkers.n
    if subset is not None:
        check_subset(subset, n)
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
        moving, info = kernel.step(
            moving,
            move_energy,
            move.step_size,
            generator,
            move.noise_std,
            rows,
            weighted and not kernel.invariant,
            move.compile,
        )
        if info.increment is not None:
            moved_inc = info.increment if moved_inc is None else moved_inc + info.increment
        if info.accepted is not None:
            accepted.append(info.accepted)
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
            assert moved_inc is not None and still_inc is not None  # weighted moves return increments
            inc = torch.zeros(n, dtype=torch.float64, device=still_inc.device)
            inc = inc.index_copy(0, subset, moved_inc).index_copy(0, rest, still_inc)
    walkers = replace(walkers, state=state)
    if weighted:
        assert inc is not None  # weighted moves return increments
        walkers = add_log_weights(walkers, inc)
    if not accepted:
        return walkers, MoveInfo()
    n_accepted = torch.stack(accepted).double().sum()  # stays on the walkers' device: no host synchronisation
    counts = torch.stack([n_accepted, n_accepted.new_tensor(float(len(accepted) * moving.x.shape[0]))])
    total = coll.sum(counts)
    return walkers, MoveInfo(accept_rate=total[0] / total[1], counts=counts)


EVERY_HALF = Resampling(0.5, "systematic")
""":func:`step`'s default: systematic resampling whenever ESS/N < 0.5, over the whole population."""


def step(
    walkers: Walkers,
    energy: EnergyFn,
    move: Move,
    generator: torch.Generator,
    *,
    resampling: Resampling | None = EVERY_HALF,
    subset: Tensor | None = None,
    rows: NoiseRows | None = None,
    coll: Collective = LOCAL,
    precondition: Preconditioner | None = None,
    **legacy: Any,
) -> tuple[Walkers, MoveInfo]:
    """:func:`advance` (weighted) then ``resampling`` (None: never; the old keywords ``ess_threshold=``,
    ``resampler=`` and ``scope=`` still work, with a DeprecationWarning)."""
    resampling = resampling_with("step", resampling, legacy, EVERY_HALF)
    walkers, info = advance(
        walkers, energy, move, generator, subset=subset, rows=rows, coll=coll, precondition=precondition
    )
    if resampling is None:
        return walkers, info
    r = resampling
    walkers, resampled = maybe_resample(walkers, r.threshold, r.scheme, generator, coll, r.scope)
    return walkers, replace(info, resampled=resampled)


def anneal(
    walkers: Walkers,
    energies: Iterable[EnergyFn],
    move: Move | Sequence[Move],
    generator: torch.Generator,
    *,
    resampling: Resampling | None = None,
    progress: bool = False,
    preconditioners: Sequence[Preconditioner | None] | None = None,
    **legacy: Any,
) -> tuple[Walkers, list[MoveInfo]]:
    """Run :func:`step` along a schedule of energies (the walkers start cached under the one before the
    first); ``move``: one :class:`Move` for every energy or one per energy; ``resampling``: after each energy
    (None: never; the old ``ess_threshold=``/``resampler=`` still work, with a DeprecationWarning);
    ``preconditioners``: one (or None) per energy.  Returns the final walkers and one :class:`MoveInfo` per energy."""
    if legacy:  # the old keywords: ess_threshold (default None: never), resampler
        resampling = resampling_with("anneal", EVERY_HALF, {"ess_threshold": None} | legacy, EVERY_HALF)
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
        walkers, info = step(walkers, energy, mv, generator, resampling=resampling, precondition=pre)
        infos.append(info)
    return walkers, infos


__getattr__ = renamed(__name__, {"SAMPLERS": f"{__name__}.KERNELS", "get_sampler": f"{__name__}.get_kernel"})

__all__ = [
    "KERNELS",
    "SCOPES",
    "Kernel",
    "Move",
    "MoveInfo",
    "advance",
    "anneal",
    "get_kernel",
    "move_with",
    "start",
    "step",
]
