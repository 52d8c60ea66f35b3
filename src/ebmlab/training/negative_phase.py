"""The negative phase shared by CD, PCD and Jarzynski-weighted training.

The three methods are configurations of one :class:`NegativePhase`: where walkers start, whether they
carry log-weights, whether they are reset to data, and when they are resampled.  :func:`move_walkers`
is the one walker update used by all of them.

Weighted move (Carbone et al. 2023): walkers cached under theta_k move by ULA with theta_k's gradient
and are re-evaluated under theta_{k+1}; the log-weight increment is
``U_k(x) - U_{k+1}(y) + log q_{k+1}(y -> x) - log q_k(x -> y)`` (exact for every step size).
Walkers not moved in a mini-batched update get the AIS increment ``U_k(x) - U_{k+1}(x)``; later
steps of a moved walker at fixed theta add MALA log ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..distributed import NoiseRows
from ..sampling.langevin import EnergyFn, LangevinState, check_step_size, init_state, refresh, ula
from ..sampling.resampling import get_resampler
from ..sampling.walkers import SCOPES, Walkers, add_log_weights, make_walkers

INITS = ("model", "data")


@dataclass(frozen=True)
class NegativePhase:
    """Configuration of the walkers that estimate the model expectation in the gradient.

    init: "model" (exact draws from the initial model, needs its log Z for log-Z tracking) or "data".
    weighted: carry Jarzynski log-weights (and resample on low ESS).
    reset_every: reset walkers to fresh data every this many iterations (CD); None = persistent.
    step_size: ULA step h; noise_std: move noise (default sqrt(2h), the exact-target choice).
    steps_per_update: ULA steps per parameter update.
    walker_batch: walkers used in the loss and moved per update (None = all of them).
    resampler, ess_threshold: resample when ESS/N < threshold (None = never); weighted only.
    resample_scope: with walkers split across processes, "global" resamples the whole population
    (the same result as one process), "local" each process's own walkers (no walker traffic).
    """

    init: str = "model"
    weighted: bool = True
    reset_every: int | None = None
    step_size: float = 0.1
    noise_std: float | None = None
    steps_per_update: int = 1
    walker_batch: int | None = None
    resampler: str = "systematic"
    ess_threshold: float | None = 0.5
    resample_scope: str = "global"

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        check_step_size(self.step_size, self.noise_std)
        if self.steps_per_update < 1:
            raise ValueError(f"steps_per_update must be >= 1, got {self.steps_per_update}")
        if self.reset_every is not None and self.reset_every < 1:
            raise ValueError(f"reset_every must be >= 1 or None, got {self.reset_every}")
        if self.walker_batch is not None and self.walker_batch < 2:
            raise ValueError(f"walker_batch must be >= 2 or None, got {self.walker_batch}")
        get_resampler(self.resampler)
        if self.resample_scope not in SCOPES:
            raise ValueError(f"resample_scope must be one of {SCOPES}, got {self.resample_scope!r}")
        t = self.ess_threshold
        if t is not None and not (isinstance(t, (int, float)) and 0 < t <= 1 and math.isfinite(t)):
            raise ValueError(f"ess_threshold must lie in (0, 1] (or be None to never resample), got {t!r}")


METHODS = ("jarzynski", "pcd", "cd")


def negative_phase(method: str, **overrides) -> NegativePhase:
    """The named method's configuration, with any field overridden.

    jarzynski: walkers from the initial model, weighted, resampled at ESS/N < 0.5 (systematic).
    pcd: persistent walkers started at data, equal weights.
    cd: walkers reset to data every 4 iterations, equal weights.
    """
    presets = {
        "jarzynski": dict(init="model", weighted=True),
        "pcd": dict(init="data", weighted=False, ess_threshold=None),
        "cd": dict(init="data", weighted=False, ess_threshold=None, reset_every=4),
    }
    if method not in presets:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    return NegativePhase(**{**presets[method], **overrides})


def _ula_chain(
    state: LangevinState, energy: EnergyFn, phase: NegativePhase, generator: torch.Generator, rows: NoiseRows | None
) -> tuple[LangevinState, Tensor]:
    """``steps_per_update`` ULA steps; the first crosses from the cached parameters to ``energy``'s."""
    total = torch.zeros(state.x.shape[0], dtype=torch.float64, device=state.x.device)
    for _ in range(phase.steps_per_update):
        state, inc = ula(state, energy, phase.step_size, generator, phase.noise_std, rows)
        total += inc
    return state, total


def _merge(state: LangevinState, idx: Tensor, part: LangevinState) -> LangevinState:
    return LangevinState(
        state.x.index_copy(0, idx, part.x),
        state.energy.index_copy(0, idx, part.energy),
        state.grad.index_copy(0, idx, part.grad),
    )


def move_walkers(
    walkers: Walkers,
    energy: EnergyFn,
    phase: NegativePhase,
    generator: torch.Generator,
    moved: Tensor | None = None,
    rows: NoiseRows | None = None,
) -> Walkers:
    """Move the walkers (all, or the index set ``moved``) after a parameter update.

    ``walkers`` are cached under the old parameters, ``energy`` holds the new ones; on return every
    walker is cached under the new parameters.  Log-weights change only if ``phase.weighted``.
    ``rows``: the moved walkers' rows in the population-wide noise draw (walkers split across processes).
    """
    state = walkers.state
    if moved is None:
        new_state, inc = _ula_chain(state, energy, phase, generator, rows)
    else:
        n = state.x.shape[0]
        keep = torch.ones(n, dtype=torch.bool, device=state.x.device)
        keep[moved] = False
        still = keep.nonzero().squeeze(1)
        moved_state, moved_inc = _ula_chain(state.index(moved), energy, phase, generator, rows)
        still_state, still_inc = refresh(state.index(still), energy)
        new_state = _merge(_merge(state, moved, moved_state), still, still_state)
        inc = torch.zeros(n, dtype=torch.float64, device=state.x.device)
        inc = inc.index_copy(0, moved, moved_inc).index_copy(0, still, still_inc)
    walkers = replace(walkers, state=new_state)
    return add_log_weights(walkers, inc) if phase.weighted else walkers


def walkers_at(energy: EnergyFn, x: Tensor, log_z_ref: float | Tensor) -> Walkers:
    """Fresh equal-weight walkers at positions x (N, *event), cached under ``energy``."""
    return make_walkers(init_state(energy, x), log_z_ref)
