"""Settings of a :class:`~ebmlab.lvm.fit.LatentFit`: the method and its walkers."""

from __future__ import annotations

from dataclasses import dataclass

from ..sampling import smc
from ..sampling.resampling import get_resampler
from ..training.validation import check_int

METHODS = ("jala", "pgd", "soul")
"""The fitting methods of :class:`~ebmlab.lvm.FitConfig`: weighted walkers (JALA-EM), PGD and SOUL."""


@dataclass(frozen=True)
class FitConfig:
    """method: "jala" (weighted walkers), "pgd" or "soul" (unweighted).  step_size: Langevin step h.
    kernel: the engine's kernel ("ula"; "mala" reweights by the AIS work only).  chain_steps: SOUL's Langevin
    steps per update (1 for the others).  ess_threshold / resampler: resampling of the gradient's walkers (jala;
    None = never).  estimator: run the estimator population (jala), of ``n_walkers`` walkers, resampled
    multinomially at ``estimator_threshold`` (None = never) so that its genealogy standard error holds."""

    method: str = "jala"
    step_size: float = 1e-6
    kernel: str = "ula"
    chain_steps: int = 1
    ess_threshold: float | None = None
    resampler: str = "systematic"
    estimator: bool = True
    estimator_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {list(METHODS)}")
        smc.Move(self.kernel, self.step_size)
        check_int("chain_steps", self.chain_steps, 1)
        if self.method != "soul" and self.chain_steps != 1:
            raise ValueError(f"chain_steps applies to soul only; {self.method} moves its walkers once per update")
        get_resampler(self.resampler)
        for name in ("ess_threshold", "estimator_threshold"):
            t = getattr(self, name)
            if t is not None and not (isinstance(t, (int, float)) and 0 < t <= 1):
                raise ValueError(f"{name} must lie in (0, 1] or be None, got {t!r}")

    @property
    def weighted(self) -> bool:
        return self.method == "jala"

    @property
    def move(self) -> smc.Move:
        return smc.Move(self.kernel, self.step_size)


__all__ = ["METHODS", "FitConfig"]
