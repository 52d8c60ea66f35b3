"""Bootstrap standard errors for the :data:`~ebmlab.estimators.ESTIMATORS` entries (``bootstrap=B``).

The draws are resampled with replacement **within each sample**: the target draws x among themselves and the
proposal draws y within each proposal's block (the stratified bootstrap that pymbar uses for MBAR), so every
replicate keeps the sample sizes N1 and N_j that the estimator's weights and mixture depend on.  The estimator
runs once on all B replicates as one batch (the cached log densities are indexed, not re-evaluated), and
``se_bootstrap`` is the standard deviation of the B log Z values.  AIS is resampled over its final walkers
(log-weights), which is valid for independent walkers: plain AIS, not once an ``ess_threshold`` has resampled them.

Independent draws are assumed, as by the analytic SE; the bootstrap does not see missed modes either, but it does
not rely on the delta method, so it is the check to run where the overlap is poor (Shirts & Chodera 2008).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..errors import check_int
from .estimate import Estimate

AIS_ENTRIES = ("ais", "ais-reverse")
CACHED = ("log_phi_x", "log_phi_y", "log_q_x", "log_q_y", "log_psi_x", "log_psi_y")


def stratified_indices(
    counts: Sequence[int], reps: int, batch: torch.Size, generator: torch.Generator, device: torch.device
) -> Tensor:
    """(reps, *batch, N) indices into N = sum(counts) pooled draws: each block of ``counts`` resampled with
    replacement within itself, independently per replicate and batch item."""
    parts, start = [], 0
    for c in counts:
        u = torch.randint(c, (reps, *batch, c), generator=generator, device=generator.device)
        parts.append(u.to(device) + start)
        start += c
    return torch.cat(parts, -1)


def _take(t: Tensor, idx: Tensor, draw_axis: int) -> Tensor:
    """t (*batch, ..., N, ...) with its draws on ``draw_axis`` (an index into t's shape), expanded to the
    replicates (reps, *t.shape) and gathered along that axis by idx (reps, *batch, N)."""
    t = t.expand(idx.shape[0], *t.shape)
    axis = draw_axis % (t.dim() - 1) + 1
    between, trailing = axis - (idx.dim() - 1), t.dim() - axis - 1
    index = idx.reshape(*idx.shape[:-1], *([1] * between), idx.shape[-1], *([1] * trailing))
    return t.gather(axis, index.expand(*t.shape[:axis], idx.shape[-1], *t.shape[axis + 1 :]))


def resampled_problem(problem, reps: int, generator: torch.Generator):
    """The problem's draws resampled within each sample, as one batch of ``reps`` problems (batch shape
    (reps, *batch)), its cached log densities indexed rather than re-evaluated."""
    from .registry import Problem  # the registry imports this module

    batch, axis = problem.batch_shape, -problem.event_dim - 1
    draws, cache = {}, {}
    for name in ("x", "y"):
        t = getattr(problem, name)
        if t is None:
            continue
        counts = [t.shape[axis]] if name == "x" else list(problem.counts)
        idx = stratified_indices(counts, reps, batch, generator, t.device)
        draws[name] = _take(t, idx, len(batch))
        for key in CACHED:
            if key.endswith(f"_{name}"):
                cached = getattr(problem, key)
                cache[key] = _take(cached, idx, -1)
    out = Problem(problem.log_phi, problem.proposals, draws.get("x"), draws.get("y"), problem.counts,
                  problem.event_dim, problem.generator)  # fmt: skip
    out.__dict__.update(cache)  # fill the cached_property slots: the densities at the resampled draws
    return out


def bootstrap_se(name: str, fn: Callable[..., Estimate], problem, estimate: Estimate, reps: object, options) -> Tensor:
    """Standard deviation (*batch,) of log Z over ``reps`` bootstrap replicates of ``problem`` (see the module)."""
    reps = check_int("bootstrap", reps, 2)
    gen = problem.generator
    if gen is None:
        raise ValueError("bootstrap=B draws random numbers: build the Problem with generator=torch.Generator()...")
    if name in AIS_ENTRIES:
        log_w = estimate.diagnostics["log_w"]  # (*batch, N)
        idx = stratified_indices([log_w.shape[-1]], reps, log_w.shape[:-1], gen, log_w.device)
        log_z = torch.logsumexp(_take(log_w, idx, -1), -1) - math.log(log_w.shape[-1])
    else:
        log_z = fn(resampled_problem(problem, reps, gen), **options).log_z
    return log_z.std(0)
