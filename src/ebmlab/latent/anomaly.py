"""Anomaly detection with a latent EBM: held-out-digit splits, scores, and AUPRC.

Protocol (DAMC/LEBM MNIST, scaled to the data at hand): the normal digits (all but the held-out one) are
shuffled with a fixed seed and 80 % go to training; the test set is the other 20 % of normals plus every
image of the held-out digit (label 1 = anomaly).  AUPRC is the trapezoid area under scikit-learn's
precision-recall curve (not average precision).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import auc, precision_recall_curve

DIGITS = tuple(range(10))


def heldout_split(
    labels: np.ndarray, heldout_digit: int, seed: int = 42, train_frac: float = 0.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, test) and test anomaly labels (1 = held-out digit) for one held-out digit.

    labels: (N,) int digit labels.  The shuffle uses numpy's default_rng(seed), independent of the run seed.
    """
    if heldout_digit not in DIGITS:
        raise ValueError(f"unknown held-out digit {heldout_digit!r}; choose one of 0-9 (the papers use 1, 4, 5, 7, 9)")
    if not 0 < train_frac < 1:
        raise ValueError(f"train_frac must lie in (0, 1), got {train_frac}")
    labels = np.asarray(labels)
    normal = np.flatnonzero(labels != heldout_digit)
    anomalous = np.flatnonzero(labels == heldout_digit)
    if anomalous.size == 0:
        raise ValueError(f"no image of the held-out digit {heldout_digit} in the data")
    normal = normal[np.random.default_rng(seed).permutation(normal.size)]
    n_train = round(train_frac * normal.size)
    test = np.concatenate([normal[n_train:], anomalous])
    is_anomaly = np.concatenate([np.zeros(normal.size - n_train, np.int64), np.ones(anomalous.size, np.int64)])
    return normal[:n_train], test, is_anomaly


def auprc(is_anomaly: np.ndarray, scores: np.ndarray) -> float:
    """Trapezoid area under the precision-recall curve; higher scores = more anomalous."""
    is_anomaly, scores = np.asarray(is_anomaly), np.asarray(scores, dtype=np.float64)
    if is_anomaly.shape != scores.shape or is_anomaly.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D of equal length, got {is_anomaly.shape}, {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("anomaly scores contain NaN or infinite values")
    if not 0 < is_anomaly.sum() < is_anomaly.size:
        raise ValueError("AUPRC needs both normal (0) and anomalous (1) examples")
    precision, recall, _ = precision_recall_curve(is_anomaly, scores)
    return float(auc(recall, precision))
