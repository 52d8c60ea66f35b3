"""Normalizing-constant estimation in one engine: IS, reciprocal IS, bridge sampling, MIS,
reverse logistic regression (= MBAR), NCE and AIS, all returning an :class:`Estimate` (log Z in nats,
standard errors, diagnostics), float64 and batched over leading dimensions."""
from .ais import ais, geometric_path
from .diagnostics import kish_ess, overlap_eigengap, overlap_matrix, pareto_khat
from .estimate import Estimate, EstimatorWarning
from .mis import mis
from .noise import GaussianNoise, MixtureNoise, StudentTNoise
from .rlr import rlr
from .two_sample import bridge, importance_sampling, log_ratio, nce_log_z, reciprocal_is

__all__ = [
    "Estimate", "EstimatorWarning", "rlr", "importance_sampling", "reciprocal_is", "bridge", "nce_log_z",
    "mis", "ais", "geometric_path", "log_ratio", "kish_ess", "overlap_matrix", "overlap_eigengap",
    "pareto_khat", "GaussianNoise", "StudentTNoise", "MixtureNoise",
]
