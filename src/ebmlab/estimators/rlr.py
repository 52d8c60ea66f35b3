"""Reverse logistic regression over K states (Geyer 1994) = MBAR (Shirts & Chodera 2008).

Notation (nats): ``log_q[k, n]`` = log h_k(x_n), the unnormalised log density of state k at pooled
sample n; ``counts[k]`` = N_k samples were drawn from h_k / Z_k, pooled in state order.  With
f_k = -log Z_k the estimator minimises the convex function

    F(f) = sum_n log sum_k N_k exp(f_k + log_q[k, n]) - sum_k N_k f_k

over the unknown f_k of sampled states, with known normalizers held fixed (:mod:`.solvers`).  With
W_nk = exp(f_k + log_q[k, n]) / sum_l N_l exp(f_l + log_q[l, n]) the solution satisfies
sum_n W_nk = 1 for every unknown sampled state.  States with N_k = 0 do not enter F: their
normalizer is the deterministic-mixture importance-sampling estimate
Z_k = sum_n h_k(x_n) / sum_l N_l h_l(x_n) / Z_l (one self-consistent step), which is exactly DM-MIS
when all sampled states are known.  Covariance: the sandwich J^-1 V J^-T of the estimating
equations (:mod:`.rlr_moments`); with nothing known it is pymbar's default (Kong et al.) covariance.

The log densities may be a tensor or a callable evaluated chunk by chunk (:mod:`.pooled`), so K x N
need not fit in memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective
from ..errors import check_int
from ..uncertainty import se_from_relvar
from .diagnostics import overlap_eigengap
from .estimate import Estimate
from .frames import Mixture
from .pooled import ChunkFn, Pooled, Scan, pooled, reduce_scan, scan
from .rlr_moments import anchored_overlap, dm_step, moments, report, sandwich_cov
from .solvers import solve
from .validation import check_finite, check_positive

KnownLogZ = Mapping[int, "float | Tensor"]


def rlr(
    log_q: Tensor | ChunkFn,
    counts: list[int] | Tensor,
    known_log_z: KnownLogZ | None = None,
    *,
    chunk_size: int | None = None,
    tol: float = 1e-12,
    max_iter: int = 100,
    sci_iter: int = 0,
    strict: bool = False,
    min_overlap: float = 1e-4,
    collective: Collective = LOCAL,
) -> Estimate:
    """Estimate the log normalizers of K states from their pooled samples (RLR = MBAR).

    Args:
        log_q: (*batch, K, N) log unnormalised densities of every state at every pooled sample
            (samples ordered by the state they were drawn from; -inf = zero density), or a callable
            ``log_q(start, stop) -> (*batch, K, stop - start)`` giving those of samples start..stop-1,
            evaluated ``chunk_size`` samples at a time on each pass (it must return the same values
            every time).
        counts: (K,) samples drawn from each state, summing to N (shared across the batch).
        known_log_z: {state index: known log Z (float or (*batch,) tensor)}, held fixed.  If None,
            the first sampled state is the reference with log Z = 0 (only ratios are identifiable).
        chunk_size: samples per chunk (default 4096 for a callable; a tensor is processed whole,
            caching one array of its size, unless a chunk size is given).
        tol: convergence tolerance on max_k |sum_n W_nk - 1| over unknown sampled states.
        max_iter: maximum Newton iterations; sci_iter: self-consistent iterations before Newton.
        strict: raise instead of warning on non-convergence or low overlap.
        min_overlap: warn (or raise if strict) when the anchored overlap falls below this.
        collective: samples split across processes: each process passes its own samples (ordered by
            state) and their counts; sums over samples are reduced globally.

    Returns an :class:`Estimate` with log_z (*batch, K), se, cov (*batch, K, K), overlap (pymbar's
    N_k W^T W matrix), ess (*batch, K) (Kish ESS of each state's weights over the pooled samples),
    converged (*batch,), iterations (SCI + Newton), and diagnostics: max_residual, anchored_overlap
    (smallest eigenvalue of the normalised Hessian over the free sampled states: 0 = undetermined),
    overlap_eigengap (1 - second eigenvalue of the overlap matrix), reference.

    Raises ValueError on NaN/+inf, magnitudes beyond float64 resolution, shape/count mismatch, no
    samples, all states known, a known state without samples, a sample with zero density under its
    own state, an unsampled unknown state with zero density at every sample, or states whose
    normalizers are not tied both ways to a known one by overlapping samples.
    """
    check_positive(tol, "tol")
    check_int("max_iter", max_iter, 0)
    check_int("sci_iter", sci_iter, 0)
    if not 0 <= check_finite(min_overlap, "min_overlap") < 1:
        raise ValueError(f"min_overlap must lie in [0, 1), got {min_overlap}")
    coll = collective
    p, local_scan = coll.agree(lambda: _scanned(log_q, counts, chunk_size))
    sc = reduce_scan(local_scan, coll)
    n_k = coll.sum(p.counts)  # samples of each state over all processes
    if int(n_k.sum()) == 0:
        raise ValueError("no state has samples: at least one state must be sampled")
    known, reference = _known_values(known_log_z, n_k, p)
    sampled = n_k > 0
    unknown = torch.isnan(known).all(0)
    free, unsampled_free = sampled & unknown, ~sampled & unknown
    _check_support(sc, p, n_k, known, unsampled_free)

    mix = sampled.nonzero().squeeze(-1)
    mx = Mixture(p, mix, n_k[mix].double().log(), free[mix], None, coll)
    sol = solve(mx, _initial_f(sc.own_lse, n_k, known), tol=tol, max_iter=max_iter, sci_iter=sci_iter)
    f = dm_step(mx, sol, unsampled_free)
    mom = moments(mx, sol, f, unknown, n_k)
    cov = sandwich_cov(mom, n_k, unknown)
    overlap = mom.gram * n_k.double()
    anchored = anchored_overlap(mom, n_k, free)
    converged = sol.residual <= tol
    report(converged, sol.residual, anchored, min_overlap, strict)

    batch = p.batch_shape
    out_shape = (*batch, p.n_states)
    return Estimate(
        log_z=(-f).reshape(out_shape),
        se=se_from_relvar(torch.diagonal(cov, dim1=-2, dim2=-1)).reshape(out_shape),
        method="rlr",
        cov=cov.reshape(*out_shape, p.n_states),
        ess=(mom.colsum.square() / torch.diagonal(mom.gram, dim1=-2, dim2=-1)).reshape(out_shape),
        converged=converged.reshape(batch),
        iterations=sol.iterations,
        overlap=overlap.reshape(*out_shape, p.n_states),
        diagnostics={
            "max_residual": sol.residual.reshape(batch),
            "anchored_overlap": anchored.reshape(batch),
            "overlap_eigengap": overlap_eigengap(overlap[:, sampled][:, :, sampled]).reshape(batch),
            "reference": reference,
        },
    )


def _scanned(log_q: Tensor | ChunkFn, counts, chunk_size: int | None) -> tuple[Pooled, Scan]:
    p = pooled(log_q, counts, chunk_size=chunk_size)
    return p, scan(p)


def _known_values(known_log_z: KnownLogZ | None, n_k: Tensor, p: Pooled) -> tuple[Tensor, int | None]:
    """(B, K) tensor of known log Z (NaN = unknown) and the reference state used when none is known."""
    k_states = n_k.numel()
    known = torch.full((p.n_batch, k_states), math.nan, dtype=torch.float64, device=n_k.device)
    if known_log_z is None or (isinstance(known_log_z, Mapping) and not known_log_z):
        reference = int(torch.nonzero(n_k > 0)[0])
        known[:, reference] = 0.0
        return known, reference
    if not isinstance(known_log_z, Mapping):
        raise TypeError(f"known_log_z must be a mapping {{state index: log Z}}, got {type(known_log_z).__name__}")
    for key, value in known_log_z.items():
        if isinstance(key, bool) or not isinstance(key, int) or not -k_states <= key < k_states:
            raise ValueError(f"known_log_z has state index {key!r}, but there are only {k_states} states")
        k = key % k_states
        v = torch.as_tensor(value, dtype=torch.float64, device=n_k.device)
        if v.dim() > 0 and v.shape != p.batch_shape:
            raise ValueError(
                f"known_log_z[{key}] must be a scalar or have the batch shape "
                f"{tuple(p.batch_shape)}, got {tuple(v.shape)}"
            )
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"known_log_z[{key}] must be finite, got {v}")
        if int(n_k[k]) == 0:
            raise ValueError(
                f"state {k} is known and has no samples: it carries no information; remove it from log_q/counts"
            )
        known[:, k] = v.reshape(-1)
    if not bool(torch.isnan(known[0]).any()):
        raise ValueError("all states have known normalizers: there is nothing to estimate")
    return known, None


def _check_support(sc: Scan, p: Pooled, n_k: Tensor, known: Tensor, unsampled_free: Tensor) -> None:
    """Samples must have positive density under their own state; each unsampled unknown state must be
    positive somewhere; each unknown sampled state must be tied to a known (or reference) state in
    both directions: a chain of states, each with positive density at the next one's samples, from
    it to a known state and from a known state to it (else F has no minimum: Vardi 1985)."""
    if sc.zero_own is not None:
        n, b = sc.zero_own
        if n < 0:
            raise ValueError("a sample on another process has zero density under the state it was drawn from")
        raise ValueError(
            f"sample {n} (batch {b}) has zero density under state {int(p.origin()[n])} it was "
            "drawn from: check the ordering of samples and counts"
        )
    dead = unsampled_free & ~sc.seen
    if bool(dead.any()):
        b, k = dead.nonzero()[0].tolist()
        raise ValueError(
            f"unsampled state {k} (batch {b}) has zero density at every sample: its "
            "normalizer cannot be estimated; sample it or choose overlapping states"
        )
    idx = (n_k > 0).nonzero().squeeze(-1)  # sampled states
    reach = sc.link[:, idx][:, :, idx] | torch.eye(idx.numel(), dtype=torch.bool, device=idx.device)
    for _ in range(max(1, math.ceil(math.log2(max(idx.numel(), 2))))):
        reach = (reach.double() @ reach.double()) > 0
    anchors = ~torch.isnan(known[0, idx])
    tied = reach[:, :, anchors].any(-1) & reach[:, anchors, :].any(1)
    if not bool(tied.all()):
        b, j = (~tied).nonzero()[0].tolist()
        raise ValueError(
            f"state {int(idx[j])} (batch {b}) does not overlap a state with a known or reference "
            "normalizer in both directions (through states with positive density at each other's "
            "samples): its normalizer is not identifiable; add intermediate states or fix its log Z"
        )


def _initial_f(own_lse: Tensor, n_k: Tensor, known: Tensor) -> Tensor:
    """Start f (B, K): f_k = -log mean of h_k over its own samples, shifted by the mean gap between
    such values and the known f of the anchored states (so a common offset in log_q cancels)."""
    crude = -(own_lse - n_k.double().log())  # +inf for unsampled states
    anchors = ~torch.isnan(known)
    gap = torch.where(anchors, -known - crude, 0.0).sum(-1, keepdim=True) / anchors.sum(-1, keepdim=True)
    f = torch.where(anchors, -known, crude + gap)
    return torch.where(n_k > 0, f, 0.0)
