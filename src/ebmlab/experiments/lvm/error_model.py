"""error-model: Gaussian against Student-t observation errors, chosen by the larger evidence.

Per seed, ``trials`` data sets are drawn with Gaussian errors and as many with Student-t(nu) errors (d_y
observations, d_x standard-normal features, w ~ N(0, alpha*^-1 I), error scale sigma*).  Each candidate model is
one batched JALA-EM fit over all 2 x trials data sets: the Gaussian model starts from its exact posterior with
the exact log Z_0; the Student-t model (nu known) from the Laplace approximation at theta_0 with importance
weights, so its log Z_0 is an estimate with its error carried by the weights.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...lvm import BayesLinearRegression, StudentTRegression, exact_whitening, laplace_whitening
from .common import closed_form, evidence_fields, pooled, run_jala, theta0
from .config import ErrorModelConfig

F64 = torch.float64
MODELS = ("gaussian", "student")


def student_t(shape: tuple[int, ...], nu: int, g: torch.Generator) -> Tensor:
    """Student-t(nu) draws for an integer nu: N(0, 1) / sqrt(chi^2_nu / nu), chi^2 as a sum of squares."""
    z = torch.randn(shape, generator=g, dtype=F64)
    chi2 = torch.randn((*shape, nu), generator=g, dtype=F64).square().sum(-1)
    return z / torch.sqrt(chi2 / nu)


def make_data(cfg: ErrorModelConfig, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """features (2T, d_y, d_x), y (2T, d_y) and the generating model (2T,) (0 Gaussian, 1 Student-t)."""
    g = torch.Generator().manual_seed(seed)
    b = 2 * cfg.trials
    x = torch.randn(b, cfg.d_y, cfg.d_x, generator=g, dtype=F64)
    w = torch.randn(b, cfg.d_x, 1, generator=g, dtype=F64) / math.sqrt(cfg.alpha)
    gauss = torch.randn(cfg.trials, cfg.d_y, generator=g, dtype=F64)
    t = student_t((cfg.trials, cfg.d_y), cfg.nu, g)
    y = (x @ w).squeeze(-1) + cfg.sigma * torch.cat([gauss, t])
    return x, y, make_truth(cfg)


def run_model(cfg: ErrorModelConfig, name: str, seed: int, ckpt: Path, progress: bool | None) -> dict[str, Any]:
    """The batched fit of one candidate error model to every data set of one seed."""
    x, y, _ = make_data(cfg, seed)
    ls, la = theta0(cfg, cfg.sigma**2, cfg.alpha)
    if name == "gaussian":
        gaussian = BayesLinearRegression.from_data(x, y, log_sigma2=ls, log_alpha=la)
        fit = run_jala(cfg, exact_whitening(gaussian), closed_form(gaussian), seed * 10 + 1, ckpt, progress, name)
        return evidence_fields(fit, closed_form(gaussian))
    model = StudentTRegression(x, y, float(cfg.nu), log_sigma2=ls, log_alpha=la)
    ols = torch.linalg.lstsq(x, y.unsqueeze(-1)).solution.squeeze(-1)
    fit = run_jala(cfg, laplace_whitening(model, ols), None, seed * 10 + 2, ckpt, progress, name)
    return evidence_fields(fit)


def make_truth(cfg: ErrorModelConfig) -> Tensor:
    """The generating model of each data set (0 Gaussian, 1 Student-t), in :func:`make_data`'s order."""
    return torch.cat([torch.zeros(cfg.trials), torch.ones(cfg.trials)]).long()


def choices(runs: dict[str, dict[str, Any]], cfg: ErrorModelConfig, seeds: list[int]) -> dict[str, Any]:
    """Fraction of data sets whose larger evidence picks the generating model, per generating model and rule
    (estimator population for both models; coupled for both), and the mean evidence gap (Student-t minus
    Gaussian, nats)."""
    out: dict[str, Any] = {}
    truth = make_truth(cfg).repeat(len(seeds))
    for rule, key in (("estimator", "log_z_est"), ("coupled", "log_z_coupled")):
        gap = pooled(runs["student"], key, seeds) - pooled(runs["gaussian"], key, seeds)
        for label, k in (("gaussian", 0), ("student", 1)):
            mask = truth == k
            out[f"correct_{label}_{rule}"] = float(((gap[mask] > 0) == bool(k)).double().mean())
            out[f"gap_{label}_{rule}_mean"] = float(gap[mask].mean())
    return out


def evidence_checks(runs: dict[str, dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Gaussian model: the estimator population's evidence against the closed form (fraction within 3 SE,
    mean error); Student-t: the median SE; both: the wall-clock and CPU time of the fits."""
    est, se, ex = (pooled(runs["gaussian"], k, seeds) for k in ("log_z_est", "log_z_se", "log_z_exact"))
    return {
        "gaussian_within_3se": float((((est - ex) / se).abs() <= 3).double().mean()),
        "gaussian_error_est_mean": float((est - ex).mean()),
        "student_se_median": float(pooled(runs["student"], "log_z_se", seeds).median()),
    } | {key: sum(runs[m][str(s)][key] for m in MODELS for s in seeds) for key in ("wall_time_s", "cpu_time_s")}
