"""ebmlab: energy-based models, Jarzynski-weighted training, latent EBM priors and
normalizing-constant estimation in PyTorch.

The public API, importable from the top level (loaded on first use, so ``import ebmlab`` and the CLI's
``--help`` stay fast):

- training: :class:`Trainer`, :func:`negative_phase`, :class:`NegativePhase`, :class:`DivergenceError`
- energies: :class:`Gaussian`, :class:`GaussianMixture`, :class:`MLPEnergy`, :class:`ConvEnergy`
- the weighted-walker engine: :mod:`smc` (``start``, ``advance``, ``step``, ``anneal``), :class:`Move`,
  :data:`KERNELS`, :class:`Walkers`, :func:`log_z_estimate`, :func:`log_z_se`, :func:`ess`
- estimators: :data:`ESTIMATORS`, :class:`Problem`, :func:`get_estimator`, :class:`Estimate`,
  :func:`rlr`, :func:`ais`
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:  # the one source of the version is pyproject.toml, read back from the installed metadata
    __version__ = version("ebmlab")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "Trainer": "ebmlab.training",
    "negative_phase": "ebmlab.training",
    "NegativePhase": "ebmlab.training",
    "DivergenceError": "ebmlab.errors",
    "Gaussian": "ebmlab.energies",
    "GaussianMixture": "ebmlab.energies",
    "MLPEnergy": "ebmlab.energies",
    "ConvEnergy": "ebmlab.energies",
    "Move": "ebmlab.sampling.kernels",
    "KERNELS": "ebmlab.sampling.smc",
    "Walkers": "ebmlab.sampling.walkers",
    "log_z_estimate": "ebmlab.sampling.walkers",
    "log_z_se": "ebmlab.sampling.walkers",
    "ess": "ebmlab.sampling.walkers",
    "ESTIMATORS": "ebmlab.estimators",
    "Problem": "ebmlab.estimators",
    "get_estimator": "ebmlab.estimators",
    "Estimate": "ebmlab.estimators",
    "rlr": "ebmlab.estimators",
    "ais": "ebmlab.estimators",
}
# old public names -> their new homes (a DeprecationWarning names the new one)
_RENAMED = {"SAMPLERS": "ebmlab.sampling.smc.KERNELS"}
__all__ = ["smc", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name == "smc":
        return importlib.import_module("ebmlab.sampling.smc")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        from .deprecation import renamed

        return renamed(__name__, _RENAMED)(name)
    raise AttributeError(f"module 'ebmlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
