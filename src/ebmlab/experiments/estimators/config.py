"""Settings of the ``ebmlab estimators`` experiments: one frozen config per (preset, experiment), validated once.

Each experiment reads only some of the sizes (``USES``): replicates ``reps``, target draws ``n1`` and proposal draws
``n2``; for ``nce-gmm`` the NCE training ``steps``, the dimension ``dim`` and the data size ``n_data``.  The others
are ``None`` in its config.  Presets: ``cpu`` (the full settings: 100 replicates, N1 = N2 = 500, the GMM study's
d = 50, n = 10 000 and 1 500 steps) and ``quick`` (a smoke test: seconds per experiment).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ...errors import check_int
from .axes import AXES
from .nce_gmm import NceGmmConfig

EXPERIMENTS = ("noise-scale", "mis", "equivalence", "nce-gmm", *AXES)
PRESET_NAMES = ("quick", "cpu")
SIZES = ("reps", "n1", "n2", "steps", "dim", "n_data")
MINIMUM = {"reps": 2, "n1": 2, "n2": 2, "steps": 1, "dim": 1, "n_data": 4}
USES: dict[str, tuple[str, ...]] = {
    "noise-scale": ("reps", "n1", "n2"),
    "mis": ("reps",),
    "equivalence": ("n1", "n2"),
    "nce-gmm": ("steps", "dim", "n_data"),
    **{axis: ("reps", "n1", "n2") for axis in AXES},
}
DEFAULT_SEEDS = {"quick": [0], "cpu": [0]}


def option(name: str) -> str:
    """The command-line option of a size: ``n_data`` -> ``--n-data``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class EstimatorsConfig:
    """The sizes of one experiment (``None``: not used by it); a one-line ValueError names a bad value."""

    experiment: str
    reps: int | None = None
    n1: int | None = None
    n2: int | None = None
    steps: int | None = None
    dim: int | None = None
    n_data: int | None = None

    def __post_init__(self) -> None:
        if self.experiment not in USES:
            raise ValueError(f"unknown experiment {self.experiment!r}; choose one of {list(EXPERIMENTS)}")
        for name in SIZES:
            value = getattr(self, name)
            if name not in USES[self.experiment]:
                if value is not None:
                    raise ValueError(f"{option(name)} does not apply to the {self.experiment} experiment")
                continue
            if value is None:
                raise ValueError(f"the {self.experiment} experiment needs {option(name)}")
            object.__setattr__(self, name, check_int(option(name), value, MINIMUM[name]))

    def used(self) -> dict[str, int]:
        """The sizes this experiment reads, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in USES[self.experiment]}

    def nce_gmm(self) -> NceGmmConfig:
        """The NCE training settings of ``nce-gmm`` (its sizes over :class:`NceGmmConfig`'s defaults)."""
        return NceGmmConfig(**self.used())


def _preset(experiment: str, reps: int, n: int, gmm: NceGmmConfig) -> EstimatorsConfig:
    sizes = dict(reps=reps, n1=n, n2=n, steps=gmm.steps, dim=gmm.dim, n_data=gmm.n_data)
    return EstimatorsConfig(experiment, **{k: v for k, v in sizes.items() if k in USES[experiment]})


_FULL = NceGmmConfig()
PRESETS: dict[str, dict[str, EstimatorsConfig]] = {
    "cpu": {e: _preset(e, 100, 500, _FULL) for e in EXPERIMENTS},
    "quick": {
        "noise-scale": _preset("noise-scale", 5, 200, _FULL),
        "mis": _preset("mis", 5, 200, _FULL),
        "equivalence": _preset("equivalence", 5, 300, _FULL),
        "nce-gmm": _preset("nce-gmm", 5, 200, NceGmmConfig(dim=3, n_data=400, steps=150)),
        **{axis: _preset(axis, 4, 100, _FULL) for axis in AXES},
    },
}


def preset(experiment: str, name: str, **overrides: int | None) -> EstimatorsConfig:
    """The preset's config of ``experiment`` with the non-None ``overrides`` (sizes it uses) applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESET_NAMES)}")
    if experiment not in USES:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {list(EXPERIMENTS)}")
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return replace(PRESETS[name][experiment], **given)
