"""The negative phase shared by CD, PCD and Jarzynski-weighted training.

The three methods are configurations of one :class:`NegativePhase`: where walkers start, whether they
carry log-weights, whether they are reset to data, and when they are resampled.  The walkers are moved
by the weighted-walker engine :mod:`ebmlab.sampling.smc` (ULA with the Carbone et al. increment, or
MALA with the AIS increment) with the phase's :attr:`NegativePhase.move`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..sampling.kernels import Move, move_with
from ..sampling.resampling import Resampling, check_threshold

INITS = ("model", "data")


@dataclass(frozen=True)
class NegativePhase:
    """Configuration of the walkers that estimate the model expectation in the gradient.

    init: "model" (exact draws from the initial model, needs its log Z for log-Z tracking) or "data".
    weighted: carry Jarzynski log-weights (and resample on low ESS).
    reset_every: reset walkers to fresh data every this many iterations (CD); None = persistent.
    move: the walkers' move at each parameter update (:class:`~ebmlab.sampling.smc.Move`: kernel "ula" with
    the Carbone et al. weights or "mala" with only the AIS work U_k(x) - U_{k+1}(x) in the weights, step
    size h, noise, ``n_steps`` kernel steps per update, compiled or not; its ``compile`` changes rounding
    only, so it is not a setting a checkpoint must agree with).
    walker_batch: walkers used in the loss and moved per update (None = all of them).
    resampler, ess_threshold: resample when ESS/N < threshold (None = never); weighted only.
    resample_scope: with walkers split across processes, "global" resamples the whole population
    (the same result as one process), "local" each process's own walkers (no walker traffic).
    cess_target: ESS-controlled updates (weighted only): a parameter update is shortened until the
    conditional ESS of the walkers' AIS increment is at least this fraction (None = off).
    """

    init: str = "model"
    weighted: bool = True
    reset_every: int | None = None
    move: Move = field(default_factory=Move)
    walker_batch: int | None = None
    resampler: str = "systematic"
    ess_threshold: float | None = 0.5
    resample_scope: str = "global"
    cess_target: float | None = None

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if not isinstance(self.move, Move):
            raise TypeError(f"move must be a Move (ebmlab.sampling.smc.Move), got {type(self.move).__name__}")
        if self.reset_every is not None and not _positive_int(self.reset_every):
            raise ValueError(f"reset_every must be an integer >= 1 or None, got {self.reset_every!r}")
        if self.walker_batch is not None and not (_positive_int(self.walker_batch) and self.walker_batch >= 2):
            raise ValueError(f"walker_batch must be an integer >= 2 or None, got {self.walker_batch!r}")
        _ = self.resampling, self.estimator_resampling  # validate resampler, ess_threshold and scope
        if self.cess_target is not None:
            check_threshold(self.cess_target, "cess_target")
        if self.cess_target is not None and not self.weighted:
            raise ValueError("cess_target controls the weights of weighted walkers; it needs weighted=True")

    @property
    def resampling(self) -> Resampling | None:
        """The gradient walkers' resampling (None: never, e.g. unweighted walkers or no threshold)."""
        if self.ess_threshold is None:
            return None
        return Resampling(self.ess_threshold, self.resampler, self.resample_scope)

    @property
    def estimator_resampling(self) -> Resampling:
        """The estimator population's: multinomial (the genealogy standard error needs it) at the walkers'
        threshold (0.5 without one) and scope."""
        threshold = 0.5 if self.ess_threshold is None else self.ess_threshold
        return Resampling(threshold, "multinomial", self.resample_scope)


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


METHODS = ("jarzynski", "pcd", "cd")
"""The training methods :func:`negative_phase` configures."""


def negative_phase(method: str, **overrides: Any) -> NegativePhase:
    """The named method's configuration, with any field overridden.

    jarzynski: walkers from the initial model, weighted, resampled at ESS/N < 0.5 (systematic).
    pcd: persistent walkers started at data, equal weights.
    cd: walkers reset to data every 4 iterations, equal weights.
    The move's fields as keywords (``step_size=``, ``kernel=``, ``steps_per_update=``, ...) still work,
    with a DeprecationWarning: pass ``move=Move(...)``.
    """
    presets = {
        "jarzynski": dict(init="model", weighted=True),
        "pcd": dict(init="data", weighted=False, ess_threshold=None),
        "cd": dict(init="data", weighted=False, ess_threshold=None, reset_every=4),
    }
    if method not in presets:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    own = {f.name for f in fields(NegativePhase)}
    legacy = {k: v for k, v in overrides.items() if k not in own}
    phase = {k: v for k, v in overrides.items() if k in own}
    if legacy:
        phase["move"] = move_with("negative_phase", phase.get("move"), legacy, Move())
    return NegativePhase(**{**presets[method], **phase})


def default_log_z_walkers(n_walkers: int, phase: NegativePhase, world_size: int = 1) -> int:
    """N/4 estimator walkers for weighted training (rounded down to a multiple of the number of
    processes), none for PCD/CD."""
    if not phase.weighted:
        return 0
    m = n_walkers // 4 // world_size * world_size
    return m if m >= 2 else 0
