"""Metrics: an image classifier (labels and features) and the feature Frechet distance."""

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

__all__ = [
    "DigitClassifier",
    "accuracy",
    "class_fractions",
    "frechet_distance",
    "frechet_from_moments",
    "gaussian_moments",
    "load_classifier",
    "predict",
    "save_classifier",
    "train_classifier",
]
