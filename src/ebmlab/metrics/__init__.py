"""Metrics: an image classifier (labels and features), the feature Frechet distance, class regions of a
low-dimensional space, and the class masses of a model (grid quadrature, weighted draws, AIS)."""

from .classifier import (
    DigitClassifier,
    accuracy,
    class_fractions,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from .frechet import frechet_distance, frechet_from_moments, gaussian_moments
from .masses import (
    GridQuadrature,
    QuadratureCheck,
    ais_class_masses,
    mala_chain_ends,
    total_variation,
    weighted_class_masses,
)
from .regions import RegionClassifier

__all__ = [
    "DigitClassifier",
    "GridQuadrature",
    "QuadratureCheck",
    "RegionClassifier",
    "accuracy",
    "ais_class_masses",
    "class_fractions",
    "frechet_distance",
    "frechet_from_moments",
    "gaussian_moments",
    "load_classifier",
    "mala_chain_ends",
    "predict",
    "save_classifier",
    "total_variation",
    "train_classifier",
    "weighted_class_masses",
]
