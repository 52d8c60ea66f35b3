"""Settings of the dimension sweep: which points (space, dimension) it visits, the preset of the imbalanced-
digit study it runs at each, and the weight-keeping mechanisms a run may switch on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, cast

from ...data.projection import DIGITS8X8_DIM, check_space_dim
from ...metrics.mass_checks import MassCheck
from ..mnist.config import DIGITS, LowDimConfig
from ..mnist.config import preset as study_preset

SCALING_SPACES = ("pca", "digits8x8")
DEFAULT_DIMS = (2, 4, 8, 16, 32, 64)
QUICK_DIMS = (2, 4)
PRESET_NAMES = ("quick", "cpu")

# what the sweep changes in the imbalanced-digit study's own presets of the same name: half the walkers (2000
# gradient walkers and 2000 in the estimator population: 63 runs fit in about 1.5 CPU-hours), fewer, smaller
# evaluations during training (the final model's masses are measured by the three-way check instead), the
# increment split recorded, and the check of every final model in more than two dimensions
_CPU = dict(
    n_walkers=2000, log_z_walkers=2000, eval_every=250, ais_particles=500, ais_temperatures=100,
    final_ais_particles=1000, final_ais_temperatures=200,
)  # fmt: skip
_CPU_CHECK = MassCheck(
    smc_particles=4000, pilot_particles=1000, cess_target=0.95, smc_steps=5, chain_steps=3000, chain_step_size=0.1
)
_QUICK_CHECK = MassCheck(smc_particles=200, pilot_particles=100, smc_steps=1, is_draws=2000, chains=100, chain_steps=50)


@dataclass(frozen=True)
class Mechanisms:
    """Weight-keeping mechanisms, each None = the preset's: ``kernel`` ('ula' or 'mala'),
    ``steps_per_update`` (moves per parameter update), ``cess_target`` (ESS-controlled updates),
    ``lr_ess_target`` (ESS-adaptive learning rate), ``walkers`` (gradient walkers and estimator population
    alike), ``precondition`` (whitened kernel), and ``iters`` / ``ess_threshold`` / ``resampler``."""

    kernel: str | None = None
    steps_per_update: int | None = None
    cess_target: float | None = None
    lr_ess_target: float | None = None
    walkers: int | None = None
    precondition: bool | None = None
    iters: int | None = None
    ess_threshold: float | None = None
    resampler: str | None = None

    def overrides(self) -> dict[str, Any]:
        """The LowDimConfig fields these set (None fields leave the preset's)."""
        out = {k: v for k, v in vars(self).items() if v is not None and k != "walkers"}
        if self.walkers is not None:
            out |= {"n_walkers": self.walkers, "log_z_walkers": self.walkers}
        return out


def point_name(space: str, dim: int) -> str:
    """The sub-directory of a point: 'pca16', 'digits8x8'."""
    return space if space == "digits8x8" else f"{space}{dim}"


def points(spaces: list[str], dims: list[int]) -> list[tuple[str, int]]:
    """The (space, dim) points of a sweep: every dim for pca, the 64 pixels for digits8x8."""
    out: list[tuple[str, int]] = []
    for space in spaces:
        if space not in SCALING_SPACES:
            raise ValueError(f"unknown space {space!r}; the sweep takes {list(SCALING_SPACES)}")
        for dim in [DIGITS8X8_DIM] if space == "digits8x8" else dims:
            check_space_dim(space, dim, len(DIGITS))
            out.append((space, dim))
    return out


def point_config(name: str, space: str, dim: int, mechanisms: Mechanisms | None = None) -> LowDimConfig:
    """The study's settings at one point: the imbalanced-digit preset ``name`` of ``space`` at ``dim``, with the
    sweep's evaluation settings, the increment split, the three-way mass check above 2-D (where no quadrature
    exists), an AIS step shrinking like dim^(-1/3) above 8-D, and the ``mechanisms``."""
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESET_NAMES)}")
    base = cast(LowDimConfig, study_preset(space, name, None if space == "digits8x8" else dim))  # a projected space
    fields: dict[str, Any] = {"split_increments": True}
    if name == "cpu":
        fields |= _CPU
    if dim > 2:
        fields["mass_check"] = _CPU_CHECK if name == "cpu" else _QUICK_CHECK
    if space == "pca" and dim > 8:
        fields["ais_step_size"] = base.ais_step_size * (8 / dim) ** (1 / 3)
    return replace(base, **(fields | (mechanisms or Mechanisms()).overrides()))


def default_seeds(name: str) -> list[int]:
    """One seed for ``quick``, three for ``cpu``."""
    return [0] if name == "quick" else [0, 1, 2]


__all__ = [
    "DEFAULT_DIMS",
    "PRESET_NAMES",
    "QUICK_DIMS",
    "SCALING_SPACES",
    "Mechanisms",
    "default_seeds",
    "point_config",
    "point_name",
    "points",
]
