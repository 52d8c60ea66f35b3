"""What every space of the imbalanced-digit study records at an evaluation: class masses (of the
walkers and of the model) against the 4:2:1 target, and the trainer's log Z estimates; and the
summary of the final metrics over seeds."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..metrics.masses import total_variation, weighted_class_masses
from ..sampling.walkers import Walkers
from ..training import Trainer
from .study import seed_summary

# summary key -> path into a run's result
SUMMARY_PATHS = {
    "model_tv": ("model_tv",),
    "walker_tv": ("walker_tv",),
    "estimator_tv": ("estimator_tv",),
    "log_z_error": ("log_z_error",),
    "ais_tv": ("ais_tv",),
    "final_ais_tv": ("final", "ais", "tv"),
    "final_ais_log_z_error": ("final", "ais_log_z_error"),
    "quadrature_mass_error": ("final", "quadrature_mass_error"),
    "frechet": ("frechet",),
    "n_resamplings": ("n_resamplings",),
    "n_estimator_resamplings": ("n_estimator_resamplings",),
    "accept_rate": ("accept_rate",),
    "mean_update_fraction": ("mean_update_fraction",),
    "wall_time_s": ("wall_time_s",),
    "cpu_time_s": ("cpu_time_s",),
}

ESTIMATE_KEYS = (
    "ess_frac",
    "log_z_est",
    "log_z_se",
    "log_z_est_coupled",
    "log_z_se_coupled",
    "est_ess_frac",
    "log_z_reliable",
    "log_z_reliable_coupled",
    "log_z_unreliable_reason",
    "log_z_unreliable_reason_coupled",
)


def mass_fields(
    prefix: str, labels: Tensor, log_w: Tensor | None, target: tuple[float, ...], eve: Tensor | None = None
) -> dict[str, Any]:
    """``<prefix>_masses`` (C,), their standard errors and ``<prefix>_tv`` (to ``target``) of labelled
    draws with log-weights (None = equal weights) and, for a resampled population, ancestors ``eve``."""
    masses, se = weighted_class_masses(labels, log_w, len(target), eve)
    return {
        f"{prefix}_masses": masses.tolist(),
        f"{prefix}_masses_se": se.tolist(),
        f"{prefix}_tv": total_variation(masses, target),
    }


def walker_log_weights(walkers: Walkers, weighted: bool) -> Tensor | None:
    """The walkers' log-weights for weighted (Jarzynski) training, None (equal weights) otherwise."""
    return walkers.log_w if weighted else None


def estimates(trainer: Trainer, data: Tensor) -> dict[str, Any]:
    """The gradient walkers' ESS/N, the trainer's current log Z estimates (estimator population and, as
    ``*_coupled``, the gradient's walkers) and the cross-entropy estimate CE = mean energy of ``data``
    + log Z, in nats."""
    out = {k: v for k, v in trainer.summary().items() if k in ESTIMATE_KEYS}
    if "log_z_est" in out:
        with torch.no_grad():
            mean_energy = float(torch.cat([trainer.energy(b) for b in data.split(1024)]).double().mean())
        out["ce_est"] = mean_energy + out["log_z_est"]
    return out


def _lookup(run: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(run, dict) or key not in run:
            return None
        run = run[key]
    return run


def summarize(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method: mean / min / max over seeds of the final metrics (``SUMMARY_PATHS``) and the mean
    model and walker class masses."""
    out = {}
    for method, by_seed in runs.items():
        ok = [r for r in by_seed.values() if r.get("status") == "ok"]
        if ok:
            flat = [{k: _lookup(r, p) for k, p in SUMMARY_PATHS.items()} | {"status": "ok"} for r in ok]
            out[method] = seed_summary(flat, SUMMARY_PATHS) | {
                f"{kind}_masses_mean": np.mean([r[f"{kind}_masses"] for r in ok], axis=0).tolist()
                for kind in ("model", "walker")
                if all(r.get(f"{kind}_masses") is not None for r in ok)
            }
    return out
