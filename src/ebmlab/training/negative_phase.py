"""The negative phase shared by CD, PCD and Jarzynski-weighted training.

The three methods are configurations of one :class:`NegativePhase`: where walkers start, whether they
carry log-weights, whether they are reset to data, and when they are resampled.  The walkers are moved
by the weighted-walker engine :mod:`ebmlab.sampling.smc` (ULA with the Carbone et al. increment, or
MALA with the AIS increment) with the phase's :attr:`NegativePhase.move`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sampling.resampling import Resampling, check_threshold
from ..sampling.smc import Move

INITS = ("model", "data")


@dataclass(frozen=True)
class NegativePhase:
    """Configuration of the walkers that estimate the model expectation in the gradient.

    init: "model" (exact draws from the initial model, needs its log Z for log-Z tracking) or "data".
    weighted: carry Jarzynski log-weights (and resample on low ESS).
    reset_every: reset walkers to fresh data every this many iterations (CD); None = persistent.
    step_size: Langevin step h; noise_std: move noise (default sqrt(2h), the exact-target choice).
    steps_per_update: kernel steps per parameter update.
    kernel: "ula" (the Carbone et al. weights) or "mala" (Metropolis-adjusted: only the AIS work
    U_k(x) - U_{k+1}(x) enters the weights); see :mod:`ebmlab.sampling.smc`.
    walker_batch: walkers used in the loss and moved per update (None = all of them).
    resampler, ess_threshold: resample when ESS/N < threshold (None = never); weighted only.
    resample_scope: with walkers split across processes, "global" resamples the whole population
    (the same result as one process), "local" each process's own walkers (no walker traffic).
    cess_target: ESS-controlled updates (weighted only): a parameter update is shortened until the
    conditional ESS of the walkers' AIS increment is at least this fraction (None = off).
    compile: run the walkers' Langevin step compiled (:mod:`ebmlab.sampling.compiled`); it changes
    rounding only, so it is not a setting a checkpoint must agree with.
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
    kernel: str = "ula"
    cess_target: float | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.reset_every is not None and not _positive_int(self.reset_every):
            raise ValueError(f"reset_every must be an integer >= 1 or None, got {self.reset_every!r}")
        if self.walker_batch is not None and not (_positive_int(self.walker_batch) and self.walker_batch >= 2):
            raise ValueError(f"walker_batch must be an integer >= 2 or None, got {self.walker_batch!r}")
        _ = self.resampling, self.estimator_resampling  # validate resampler, ess_threshold and scope
        if self.cess_target is not None:
            check_threshold(self.cess_target, "cess_target")
        if self.cess_target is not None and not self.weighted:
            raise ValueError("cess_target controls the weights of weighted walkers; it needs weighted=True")
        if not _positive_int(self.steps_per_update):
            raise ValueError(f"steps_per_update must be an integer >= 1, got {self.steps_per_update!r}")
        _ = self.move  # validates the move

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

    @property
    def move(self) -> Move:
        """The walkers' move at each parameter update."""
        return Move(self.kernel, self.step_size, self.noise_std, self.steps_per_update, self.compile)


def _positive_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


METHODS = ("jarzynski", "pcd", "cd")
"""The training methods :func:`negative_phase` configures."""


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


def default_log_z_walkers(n_walkers: int, phase: NegativePhase, world_size: int = 1) -> int:
    """N/4 estimator walkers for weighted training (rounded down to a multiple of the number of
    processes), none for PCD/CD."""
    if not phase.weighted:
        return 0
    m = n_walkers // 4 // world_size * world_size
    return m if m >= 2 else 0
