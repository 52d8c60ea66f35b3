"""Input checks shared by the estimators: each failure is a ValueError/TypeError saying what to fix."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

# float64 resolves about 2e-4 nats at this magnitude: beyond it log-density differences are rounding
MAX_ABS_LOG_DENSITY = 1e12


def as_log_density(values: Any, name: str) -> Tensor:
    """Convert to a float64 tensor; reject NaN and +inf (-inf means zero density and is allowed) and
    finite magnitudes beyond :data:`MAX_ABS_LOG_DENSITY`, where float64 cannot resolve differences."""
    try:
        t = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a real-valued tensor of log densities, got {type(values).__name__}") from None
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a real-valued tensor of log densities, got dtype {t.dtype}")
    t = t.to(torch.float64)
    if t.numel() == 0:
        return t
    lo, hi = torch.aminmax(t)
    if not bool(hi < math.inf):  # NaN propagates into the maximum
        bad = torch.isnan(t) | (t == math.inf)
        raise ValueError(
            f"{name} has {int(bad.sum())} NaN or +inf entries (first at index "
            f"{tuple(int(i) for i in bad.nonzero()[0])}); log densities must be finite or -inf "
            "(zero density): check the model evaluation at those samples"
        )
    if hi == -math.inf:  # zero density everywhere: nothing to resolve
        return t
    if lo == -math.inf:
        lo = torch.where(t > -math.inf, t, hi).amin()
    big = max(abs(float(lo)), abs(float(hi)))
    if big > MAX_ABS_LOG_DENSITY:
        raise ValueError(
            f"{name} has entries of magnitude {big:.3g}: float64 resolves only {big * 2.2e-16:.2g} nats "
            "there, so differences between log densities are lost to rounding; subtract a constant "
            "from each density's values first (it shifts that log Z by the same constant)"
        )
    return t


def as_counts(counts: Sequence[int] | Tensor, n_states: int | None, n_samples: int | None) -> Tensor:
    """Validate per-state sample counts: non-negative integers, one per state, summing to the samples."""
    try:
        c = torch.as_tensor(counts)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"counts must be a sequence of integers, got {counts!r}") from None
    if c.dtype == torch.bool or c.is_complex() or (c.is_floating_point() and not bool((c == c.round()).all())):
        raise ValueError(f"counts must be integers, got {c.tolist()}")
    c = c.to(torch.int64)
    if c.dim() != 1 or (n_states is not None and c.numel() != n_states):
        want = f"({n_states},)" if n_states is not None else "(K,)"
        raise ValueError(f"counts must have one entry per state, shape {want}; got shape {tuple(c.shape)}")
    if bool((c < 0).any()):
        raise ValueError(f"counts must be non-negative, got {c.tolist()}")
    if n_samples is not None and int(c.sum()) != n_samples:
        raise ValueError(
            f"counts sum to {int(c.sum())} but the log densities hold {n_samples} samples; "
            "samples must be pooled and ordered by the state they were drawn from"
        )
    return c


def check_same_shape(a: Tensor, b: Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_positive(value: Any, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and float(value) > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_finite(value: Any, name: str) -> float:
    """A finite real number (tensors with one element accepted)."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def require_overlap(zero: Tensor, what: str, fix: str) -> None:
    """Raise when, for some batch item, ``zero`` (..., N) holds at every sample: a mean of terms that
    are all 0 there (say ``what`` happened; ``fix`` completes 'use a proposal that ...')."""
    dead = zero.all(-1)
    if bool(dead.any()):
        where = f" (batch {tuple(dead.nonzero()[0].tolist())})" if dead.dim() else ""
        raise ValueError(
            f"{what}{where}: the supports do not overlap, so Z cannot be estimated from these draws; "
            f"use a proposal that {fix}"
        )
