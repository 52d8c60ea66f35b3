"""Input checks and divergence detection shared by the trainers."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..distributed import LOCAL, Collective
from ..errors import DIVERGENCE_BOUND, DivergenceError, blow_up, check_int, check_worst, worst_values
from ..sampling.preconditioner import Preconditioner

__all__ = [
    "DIVERGENCE_BOUND",
    "DivergenceError",
    "blow_up",
    "check_int",
    "check_options",
    "check_values",
    "check_worst",
    "exact_log_z",
    "initial_log_z",
    "initial_sampler",
    "validate_data",
    "worst_values",
]


def check_options(
    phase: Any, divergence_bound: object, energy_reg: object, lr_ess_target: object, precondition: object
) -> None:
    """Raise ValueError (TypeError for a wrong type) for the trainer's scalar options: ``divergence_bound`` > 0,
    finite ``energy_reg`` >= 0, ``lr_ess_target`` in (0, 1) for a weighted ``phase`` without ``cess_target``,
    ``precondition`` a Preconditioner or None."""
    if not (isinstance(divergence_bound, (int, float)) and divergence_bound > 0):
        raise ValueError(f"divergence_bound must be a positive number, got {divergence_bound!r}")
    if not (isinstance(energy_reg, (int, float)) and math.isfinite(energy_reg) and energy_reg >= 0):
        raise ValueError(f"energy_reg must be a finite number >= 0 (0 = off), got {energy_reg!r}")
    if lr_ess_target is not None:
        if not (isinstance(lr_ess_target, (int, float)) and 0 < lr_ess_target < 1):
            raise ValueError(f"lr_ess_target must lie in (0, 1) (or be None: off), got {lr_ess_target!r}")
        if not phase.weighted or phase.cess_target is not None:
            raise ValueError(
                "lr_ess_target adapts the learning rate of weighted training: it needs a weighted phase "
                "without cess_target (choose one of the two ESS controls)"
            )
    if precondition is not None and not isinstance(precondition, Preconditioner):
        raise TypeError(f"precondition must be a Preconditioner or None, got {type(precondition).__name__}")


def validate_data(energy: nn.Module, data: Tensor) -> None:
    """Raise ValueError if ``data`` (n, *event) is not finite floating data the energy accepts."""
    if not isinstance(data, Tensor) or not data.is_floating_point():
        raise ValueError("data must be a floating-point torch.Tensor of shape (n, *event)")
    if data.dim() < 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (n, *event) with n >= 1, got {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        bad = int((~torch.isfinite(data)).flatten(1).any(1).sum())
        raise ValueError(f"data contains NaN or infinite values in {bad} sample(s); clean them first")
    dim = getattr(energy, "dim", None)
    if isinstance(dim, int) and data.dim() == 2 and data.shape[1] != dim:
        raise ValueError(f"data has dimension {data.shape[1]} but the energy expects {dim}")
    try:
        with torch.no_grad():
            u = energy(data[:2])
    except RuntimeError as exc:
        raise ValueError(f"the energy cannot be evaluated on data of shape {tuple(data.shape)}: {exc}") from exc
    if u.shape != (min(2, data.shape[0]),):
        raise ValueError(f"the energy must return one value per sample; got shape {tuple(u.shape)}")


def exact_log_z(energy: nn.Module) -> float | None:
    """The energy's closed-form log Z (its ``log_z()`` method), or None."""
    log_z = getattr(energy, "log_z", None)
    if not callable(log_z):
        return None
    with torch.no_grad():
        return float(log_z())


def initial_sampler(energy: nn.Module):
    """The energy's exact sampler of its initial model: ``sample_initial`` (e.g. a confined MLP at
    initialisation) or ``sample`` (closed-form models), else None."""
    return getattr(energy, "sample_initial", None) or getattr(energy, "sample", None)


def initial_log_z(energy: nn.Module) -> float:
    """log Z of the energy's initial model: ``initial_log_z()``, else the closed-form ``log_z()``, else 0
    (log-Z estimates are then relative to the initial model's)."""
    initial = getattr(energy, "initial_log_z", None)
    if callable(initial):
        return float(initial())
    return exact_log_z(energy) or 0.0


def check_log_z0(log_z0: object) -> float:
    """``log_z0`` as a finite float, or a ValueError: every log Z estimate is log_z0 plus a log mean weight, so a
    NaN or infinite log_z0 would make them all NaN or infinite."""
    try:
        value = float(log_z0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(log_z0, (bool, str, bytes)) or not math.isfinite(value):
        raise ValueError(
            f"log_z0 must be a finite number (log Z of the initial model in nats), got {log_z0!r}; "
            "pass its exact value, or None to take it from the energy"
        )
    return value


def check_values(
    step: int,
    bounded: dict[str, Tensor],
    finite: dict[str, Tensor],
    bound: float = DIVERGENCE_BOUND,
    coll: Collective = LOCAL,
    replicated: bool = False,
) -> None:
    """Raise :class:`DivergenceError` at iteration ``step``, on every process alike, if any process holds a
    non-finite value, or a ``bounded`` one beyond ``bound`` (``replicated``: equal on every process)."""
    worst = worst_values({**bounded, **finite})
    check_worst(step, list(bounded), list(finite), worst if replicated else coll.max(worst), bound)
