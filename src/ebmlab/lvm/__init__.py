"""Latent-variable models by maximum marginal likelihood with weighted posterior walkers (JALA-EM), their
evidence with a standard error, and the baselines (PGD, SOUL, OLS + BIC, exact ML-II)."""

from .fit import METHODS, FitConfig, LatentFit
from .regression import BayesLinearRegression, StudentTRegression, polynomial_features
from .start import Flat, Whitened, exact_whitening, laplace_whitening, standard_normal_start

__all__ = [
    "METHODS",
    "BayesLinearRegression",
    "FitConfig",
    "Flat",
    "LatentFit",
    "StudentTRegression",
    "Whitened",
    "exact_whitening",
    "laplace_whitening",
    "polynomial_features",
    "standard_normal_start",
]
