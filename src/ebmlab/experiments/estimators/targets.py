"""Targets with known log Z for the estimator studies, their draws, and the error summary of a run."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ...energies import Gaussian, GaussianMixture
from ...estimators import Estimate, EstimatorWarning, GaussianNoise, Problem

DTYPE = torch.float64


@dataclass(frozen=True)
class Target:
    """A target with known log Z: log phi = -U of an energy with exact log Z and sampling."""

    name: str
    model: Gaussian | GaussianMixture
    scales: tuple[float, ...]  # proposal scales swept in noise-scale
    equivalence_scale: float

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def log_z(self) -> float:
        with torch.no_grad():
            return float(self.model.log_z())

    def log_phi(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return -self.model(x)

    def problem(self, proposals: Sequence[GaussianNoise], x: Tensor | None, y: Tensor, counts=None) -> Problem:
        return Problem(self.log_phi, proposals, x, y, counts)


def _mixture(means: list[list[float]], log_w: list[float], stds: list[float] | float) -> GaussianMixture:
    return GaussianMixture(
        torch.tensor(means, dtype=DTYPE),
        torch.tensor(log_w, dtype=DTYPE),
        torch.tensor(stds, dtype=DTYPE),
        learn_means=False,
    )


def targets() -> list[Target]:
    """Gaussian and Gaussian-mixture targets in 1 and 10 dimensions (log Z exact)."""
    e1 = [1.0] + [0.0] * 9
    wide, narrow = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), (0.6, 0.8, 1.0, 1.4, 2.0, 2.8)
    return [
        Target("gauss-1d", _mixture([[1.0]], [0.4], 0.7), wide, 2.0),
        Target("gmm-1d", _mixture([[-2.0], [1.5]], [math.log(0.3), math.log(0.7)], [0.5, 0.8]), wide, 2.0),
        Target("gauss-10d", _mixture([[0.3] * 10], [0.4], 0.8), narrow, 1.2),
        Target(
            "gmm-10d",
            _mixture([[-1.2 * v for v in e1], [1.2 * v for v in e1]], [math.log(0.4), math.log(0.6)], [0.8, 1.0]),
            narrow,
            1.4,
        ),
    ]


def science_target() -> Target:
    """The reference d = 2 target (docs/estimators.md) exp(-sum_j (x_j - mu_j)^2 / (2 sigma_j^2)), mu = (1, -0.5),
    sigma = (0.7, 1.3): log Z = 1.743566."""
    model = Gaussian(torch.tensor([1.0, -0.5], dtype=DTYPE), torch.tensor([0.7, 1.3], dtype=DTYPE), learn_std=False)
    return Target("science-2d", model, (), 0.0)


def seeded(seed: int) -> torch.Generator:
    """A generator seeded by ``seed`` on the default device (the study runs under ``torch.device(--device)``,
    so its tensors and draws live there)."""
    return torch.Generator(torch.get_default_device()).manual_seed(seed)


def draws(sampler: Callable[[int, torch.Generator], Tensor], reps: int, n: int, g: torch.Generator) -> Tensor:
    """reps x n exact draws, (reps, n, d)."""
    return sampler(reps * n, g).reshape(reps, n, -1)


def error_summary(run: Callable[[], Estimate], log_z: float) -> dict[str, Any]:
    """MSE (with its standard error over the replicates), bias, SE coverage of log Z over the batch; failures and
    warnings recorded, not hidden."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EstimatorWarning)
        try:
            est = run()
        except ValueError as exc:
            return {"mse": math.nan, "mse_se": math.nan, "bias": math.nan, "coverage": math.nan, "error": str(exc)}
    err = est.log_z - log_z
    finite = torch.isfinite(err)
    out: dict[str, Any] = {
        "mse": float(err.square().mean()),
        "mse_se": float(err.square().std() / math.sqrt(err.numel())) if err.numel() > 1 else math.nan,
        "bias": float(err.mean()),
        "sd": float(err.std()) if err.numel() > 1 else math.nan,
        "coverage": float(((err.abs() <= 1.96 * est.se) & finite).double().mean()),
        "mean_se": float(est.se.mean()),
    }
    if caught:
        out["warnings"] = sorted({str(w.message) for w in caught})
    return out
