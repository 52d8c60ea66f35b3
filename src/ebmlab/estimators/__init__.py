"""Normalizing-constant estimation in one engine: IS, reciprocal IS, bridge sampling, MIS,
reverse logistic regression (= MBAR), NCE and AIS, all returning an :class:`Estimate` (log Z in nats,
standard errors, diagnostics), float64 and batched over leading dimensions.  :data:`ESTIMATORS`
gives every preset one calling convention over a :class:`Problem`."""

from .ais import ais, geometric_path
from .diagnostics import overlap_eigengap, pareto_khat
from .estimate import Estimate, EstimatorWarning
from .mis import mis
from .noise import GaussianNoise, MixtureNoise, StudentTNoise
from .pooled import ChunkFn
from .registry import ESTIMATORS, Problem, Proposal, get_estimator
from .rlr import rlr
from .two_sample import bridge, importance_sampling, log_ratio, nce_log_z, reciprocal_is

__all__ = [
    "ESTIMATORS",
    "ChunkFn",
    "Estimate",
    "EstimatorWarning",
    "GaussianNoise",
    "MixtureNoise",
    "Problem",
    "Proposal",
    "StudentTNoise",
    "ais",
    "bridge",
    "geometric_path",
    "get_estimator",
    "importance_sampling",
    "log_ratio",
    "mis",
    "nce_log_z",
    "overlap_eigengap",
    "pareto_khat",
    "reciprocal_is",
    "rlr",
]
