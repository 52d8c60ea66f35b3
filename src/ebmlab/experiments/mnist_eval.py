"""What every space of the imbalanced-digit study records at an evaluation: class masses (of the
walkers and of the model) against the 4:2:1 target, and the trainer's log Z estimates."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..metrics.masses import total_variation, weighted_class_masses
from ..sampling.walkers import Walkers
from ..training import Trainer

ESTIMATE_KEYS = ("ess_frac", "log_z_est", "log_z_se", "log_z_est_coupled", "log_z_se_coupled", "est_ess_frac")


def eval_generator(seed: int, step: int) -> torch.Generator:
    """The generator of an evaluation's own draws (model chains, AIS) at training step ``step`` of the
    run with seed ``seed``: seeded apart from every training stream (those are seeded by ``seed``), so
    evaluating never changes training and a resumed run evaluates identically."""
    return torch.Generator().manual_seed(1_000_003 * (seed + 1) + step)


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
