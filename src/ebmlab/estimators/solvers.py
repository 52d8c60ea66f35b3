"""A batched, safeguarded 1-D root finder for decreasing functions (bridge and NCE equations)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def solve_decreasing(
    fn: Callable[[Tensor], tuple[Tensor, Tensor]],
    x0: Tensor,
    *,
    tol: float = 1e-13,
    max_iter: int = 100,
    max_step: float = 50.0,
) -> tuple[Tensor, int, Tensor]:
    """Root of a strictly decreasing function, elementwise over a batch.

    fn(x) returns (value, derivative), both shaped like x (derivative < 0).  Newton steps (capped at
    ``max_step``) are kept inside the bracket [lo, hi] learnt from the signs seen so far, bisecting
    when a step would leave it, so the iteration cannot diverge.  Stops when every step is below
    tol * (1 + |x|).  Returns (root, iterations, converged (bool, like x)).
    """
    x = x0.clone()
    lo = torch.full_like(x, -math.inf)
    hi = torch.full_like(x, math.inf)
    done = torch.zeros_like(x, dtype=torch.bool)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        value, deriv = fn(x)
        lo = torch.where(value > 0, torch.maximum(lo, x), lo)
        hi = torch.where(value < 0, torch.minimum(hi, x), hi)
        step = torch.nan_to_num(-value / deriv, nan=0.0, posinf=max_step, neginf=-max_step)
        cand = x + step.clamp(-max_step, max_step)
        outside = (cand <= lo) | (cand >= hi)
        bracketed = torch.isfinite(lo) & torch.isfinite(hi)
        cand = torch.where(outside & bracketed, 0.5 * (lo + hi), cand)
        small = ((cand - x).abs() <= tol * (1 + x.abs())) | (value == 0)
        x = torch.where(done, x, cand)
        done = done | small
        if bool(done.all()):
            break
    return x, iterations, done
