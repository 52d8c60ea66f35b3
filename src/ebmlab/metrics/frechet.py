"""Frechet distance between Gaussians fitted to two feature sets (the FID formula on any features).

FD = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^{1/2} S_b S_a^{1/2})^{1/2}),
computed with symmetric eigendecompositions in float64 (stable for singular covariances, no complex
round-off as with a general matrix square root).  Units: squared feature units.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor


def _as_float64(feats: np.ndarray | Tensor, name: str, ndim: int = 2) -> np.ndarray:
    a = feats.detach().cpu().numpy() if isinstance(feats, Tensor) else np.asarray(feats)
    a = a.astype(np.float64)
    if a.ndim != ndim or a.shape[0] < 2:
        shape = "(N, D)" if ndim == 2 else "(N,)"
        raise ValueError(f"{name} must have shape {shape} with N >= 2, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def gaussian_moments(
    feats: np.ndarray | Tensor, weights: np.ndarray | Tensor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), float64.

    weights: optional normalised weights (N,) (e.g. importance weights of walkers); the covariance is
    sum_i w_i (f_i - mu)(f_i - mu)^T / (1 - sum_i w_i^2), unbiased for independent draws, which for
    equal weights is the usual N - 1 estimate.
    """
    a = _as_float64(feats, "feats")
    n = a.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else _as_float64(weights, "weights", ndim=1)
    if w.shape != (n,) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"weights must be {n} non-negative numbers summing to 1, got shape {w.shape}, sum {w.sum()}")
    mu = w @ a
    c = a - mu
    return mu, (c.T @ (w[:, None] * c)) / max(1.0 - float(w @ w), 1e-12)


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(0.5 * (m + m.T))
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_from_moments(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b); covariances symmetric PSD (D, D)."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.asarray(cov_a, np.float64), np.asarray(cov_b, np.float64)
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(
            f"inconsistent shapes: mu_a {mu_a.shape}, cov_a {cov_a.shape}, mu_b {mu_b.shape}, cov_b {cov_b.shape}"
        )
    root_a = _psd_sqrt(cov_a)
    cross = root_a @ cov_b @ root_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (cross + cross.T)), 0.0, None)).sum()
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt
    return float(max(value, 0.0))  # clip round-off below zero


def frechet_distance(feats_a: np.ndarray | Tensor, feats_b: np.ndarray | Tensor) -> float:
    """Frechet distance between Gaussian fits of feats_a (N, D) and feats_b (M, D)."""
    a, b = _as_float64(feats_a, "feats_a"), _as_float64(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_from_moments(*gaussian_moments(a), *gaussian_moments(b))
