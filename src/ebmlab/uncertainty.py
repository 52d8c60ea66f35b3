"""The one standard-error convention of ebmlab, for every log-normalizer estimate (log Z, log p(x)).

An estimator of Z (or of a marginal likelihood) gives, besides Z_hat, an estimate v of its relative variance
Var(Z_hat) / Z^2; for the estimators solved on the log scale (RLR/MBAR, NCE) v is their first-order
(delta-method) variance of log Z_hat, which equals the relative variance of Z_hat to first order.  The reported
standard error of log Z_hat is

    se = sqrt(log(1 + v)),

the standard deviation of log Z_hat when Z_hat is log-normal with that relative variance.  It equals the
delta-method sqrt(v) to first order, stays finite and slowly growing where v is large (a heavy-tailed or
collapsed estimate), and its square fixes the Jensen bias of the log: an unbiased Z_hat has

    E[log Z_hat] - log Z = -se^2 / 2

exactly under the log-normal model (to second order in general).  log Z_hat is therefore biased low by about
se^2 / 2 and -log Z_hat high by as much; :func:`jensen_bias` gives the term.

The SE measures estimator noise only, given that the proposal (or the walkers) reach every region that carries
mass: it cannot see a mode that no draw visits, so an estimate that misses one is both wrong and confident.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, overload

import torch
from torch import Tensor


class EstimatorWarning(UserWarning):
    """An estimate was returned but should not be trusted (non-convergence, low overlap, a collapsed genealogy)."""


# sup of sqrt(log(1 + v)) over the genealogy estimator's range v <= 1 (one surviving ancestor)
GENEALOGY_SE_CEILING = math.sqrt(math.log(2.0))


def se_from_relvar(relvar: Tensor) -> Tensor:
    """Standard error of log Z_hat in nats, sqrt(log1p(v)), from a relative-variance estimate v (any shape;
    negative rounding clamped to 0, +inf kept: an SE of inf)."""
    return torch.log1p(torch.as_tensor(relvar).clamp_min(0.0)).sqrt()


@overload
def jensen_bias(se: Tensor) -> Tensor: ...


@overload
def jensen_bias(se: float) -> float: ...


def jensen_bias(se: Tensor | float) -> Tensor | float:
    """The bias E[log Z_hat] - log Z = -se^2 / 2 (nats, <= 0) of the log of an unbiased estimate with SE ``se``
    (:func:`se_from_relvar`); subtracting it gives the bias-corrected log Z_hat + se^2 / 2."""
    return -0.5 * se * se


# an SE at >= 95% of the ceiling (relative variance >= 0.87) counts as a collapsed genealogy
COLLAPSE_FRACTION = 0.95
POPULATIONS = {"": "the estimator population", "_coupled": "the gradient's walkers"}


def collapse_reason(se: float | None, who: str = "the estimator population") -> str | None:
    """Why a walker population's log Z is not a value, or None: its genealogy standard error ``se`` (nats) is at
    >= 95% of the ceiling sqrt(log 2) = 0.833 that the genealogy estimator cannot exceed (it equals it when all
    the weight descends from one initial walker).  The estimate then rests on (nearly) one initial walker and its
    true error can be any size.  None or NaN (no genealogy SE) is not evidence of a collapse."""
    if se is None or not se >= COLLAPSE_FRACTION * GENEALOGY_SE_CEILING:
        return None
    return (
        f"{who}'s genealogy has collapsed: its log Z standard error {se:.3f} nat is at the ceiling sqrt(log 2) = "
        f"{GENEALOGY_SE_CEILING:.3f} of the genealogy estimator (nearly all weight descends from one initial walker), "
        "so its log Z and SE are not a value; use more estimator walkers (log_z_walkers), a lower ess_threshold "
        "(fewer resamplings), more walker moves per update, or smaller parameter updates (learning rate)"
    )


def reliability(report: dict, reasons: bool = True) -> dict:
    """For every ``log_z_se<suffix>`` of a trainer report (suffix '' for the estimator population, '_coupled' for
    the gradient's walkers): ``log_z_reliable<suffix>`` (bool) and, where False and ``reasons``,
    ``log_z_unreliable_reason<suffix>`` (:func:`collapse_reason`).  A population without a genealogy SE
    (resampled by a scheme other than multinomial) gets no verdict."""
    out: dict = {}
    for suffix, who in POPULATIONS.items():
        se = report.get(f"log_z_se{suffix}")
        if se is None:
            continue
        reason = collapse_reason(float(se), who)
        out[f"log_z_reliable{suffix}"] = reason is None
        if reason is not None and reasons:
            out[f"log_z_unreliable_reason{suffix}"] = reason
    return out


def warn_unreliable(report: dict) -> None:
    """An :class:`EstimatorWarning` for every ``log_z_unreliable_reason*`` of a report (:func:`reliability`)."""
    for key, reason in report.items():
        if key.startswith("log_z_unreliable_reason"):
            warnings.warn(reason, EstimatorWarning, stacklevel=3)


def reliability_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The ``log_z_reliable*`` and ``log_z_unreliable_reason*`` entries of a trainer summary."""
    return {k: v for k, v in summary.items() if k.startswith(("log_z_reliable", "log_z_unreliable"))}


def reliability_warnings(runs: dict[str, dict[Any, dict[str, Any]]]) -> list[str]:
    """One ``WARNING`` line per (method, seed, population) whose log Z was marked unreliable, saying why and what
    to change; empty when every run's estimate is reliable."""
    out = []
    for method, by_seed in runs.items():
        for seed, run in sorted(by_seed.items(), key=lambda kv: str(kv[0])):
            for suffix in POPULATIONS:
                reason = run.get(f"log_z_unreliable_reason{suffix}")
                if reason is not None:
                    out.append(f"WARNING {method} seed {seed}: {reason}")
    return out
