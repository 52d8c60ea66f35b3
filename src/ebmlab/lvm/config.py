"""Settings of a :class:`~ebmlab.lvm.fit.LatentFit`: the method and its walkers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import check_int
from ..sampling.kernels import Move
from ..sampling.resampling import check_threshold, get_resampler

METHODS = ("jala", "pgd", "soul")
"""The fitting methods of :class:`~ebmlab.lvm.FitConfig`: weighted walkers (JALA-EM), PGD and SOUL."""


@dataclass(frozen=True)
class FitConfig:
    """method: "jala" (weighted walkers), "pgd" or "soul" (unweighted).  move: the walkers' move at each update
    (kernel "ula", or "mala", which reweights by the AIS work only; step size h; ``n_steps`` kernel steps).
    chain_steps: SOUL's moves per update, its gradient averaged over the states they visit (1 for the others).
    ess_threshold / resampler: resampling of the gradient's walkers (jala;
    None = never).  estimator: run the estimator population (jala), of ``n_walkers`` walkers, resampled
    multinomially at ``estimator_threshold`` (None = never) so that its genealogy standard error holds."""

    method: str = "jala"
    move: Move = field(default_factory=lambda: Move("ula", 1e-6))
    chain_steps: int = 1
    ess_threshold: float | None = None
    resampler: str = "systematic"
    estimator: bool = True
    estimator_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {list(METHODS)}")
        if not isinstance(self.move, Move):
            raise TypeError(f"move must be a Move (ebmlab.sampling.smc.Move), got {type(self.move).__name__}")
        check_int("chain_steps", self.chain_steps, 1)
        if self.method != "soul" and self.chain_steps != 1:
            raise ValueError(f"chain_steps applies to soul only; {self.method} moves its walkers once per update")
        get_resampler(self.resampler)
        for name in ("ess_threshold", "estimator_threshold"):
            if getattr(self, name) is not None:
                check_threshold(getattr(self, name), name)

    @property
    def weighted(self) -> bool:
        return self.method == "jala"


__all__ = ["METHODS", "FitConfig"]
