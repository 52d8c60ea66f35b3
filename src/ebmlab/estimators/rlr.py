"""Reverse logistic regression over K states (Geyer 1994) = MBAR (Shirts & Chodera 2008).

Notation (nats): ``log_q[k, n]`` = log h_k(x_n), the unnormalised log density of state k at pooled
sample n; ``counts[k]`` = N_k samples were drawn from h_k / Z_k, pooled in state order.  With
f_k = -log Z_k the estimator minimises the convex function

    F(f) = sum_n log sum_k N_k exp(f_k + log_q[k, n]) - sum_k N_k f_k

over the unknown f_k of sampled states, with known normalizers held fixed.  With
W_nk = exp(f_k + log_q[k, n]) / sum_l N_l exp(f_l + log_q[l, n]) the solution satisfies
sum_n W_nk = 1 for every unknown sampled state.  States with N_k = 0 do not enter F: their
normalizer is the deterministic-mixture importance-sampling estimate
Z_k = sum_n h_k(x_n) / sum_l N_l h_l(x_n) / Z_l (one self-consistent step), which is exactly DM-MIS
when all sampled states are known.

Solver: a few self-consistent iterations, then Newton steps with an Armijo backtracking line search
on F (pseudo-inverse of the Hessian), all in log space and batched over a leading dimension.
Covariance: the M-estimator sandwich J^-1 V J^-T of the estimating equations sum_n W_nk = 1, with
the moments of every state estimated by reweighting the pooled samples; when no normalizer is
known it equals the Kong et al. / MBAR covariance (pymbar's default) exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective
from ..sampling.walkers import ess as kish_ess
from .diagnostics import overlap_eigengap, overlap_matrix
from .estimate import Estimate, EstimatorWarning, as_counts, as_log_density

KnownLogZ = Mapping[int, "float | Tensor"]


def rlr(
    log_q: Tensor,
    counts: list[int] | Tensor,
    known_log_z: KnownLogZ | None = None,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
    sci_iter: int = 3,
    strict: bool = False,
    min_overlap: float = 1e-4,
    collective: Collective = LOCAL,
) -> Estimate:
    """Estimate the log normalizers of K states from their pooled samples (RLR = MBAR).

    Args:
        log_q: (*batch, K, N) log unnormalised densities of every state at every pooled sample
            (samples ordered by the state they were drawn from).  -inf = zero density.
        counts: (K,) samples drawn from each state, summing to N (shared across the batch).
        known_log_z: {state index: known log Z (float or (*batch,) tensor)}, held fixed.  If None,
            the first sampled state is the reference with log Z = 0 (only ratios are identifiable).
        tol: convergence tolerance on max_k |sum_n W_nk - 1| over unknown sampled states.
        max_iter: maximum Newton iterations.
        sci_iter: self-consistent iterations before Newton.
        strict: raise instead of warning on non-convergence or low overlap.
        min_overlap: warn (or raise if strict) when the anchored overlap falls below this.
        collective: samples split across processes: each process passes its own samples (ordered by
            state) and their counts; sums over samples are reduced globally, so every process gets
            the estimate of the pooled samples of all processes.

    Returns an :class:`Estimate` with log_z (*batch, K), se, cov (*batch, K, K), overlap (pymbar's
    N_k W^T W matrix), ess (*batch, K) (Kish ESS of each state's weights over the pooled samples),
    converged (*batch,), iterations, and diagnostics: max_residual, anchored_overlap (smallest
    eigenvalue of the normalised Hessian over the free sampled states: 0 = undetermined),
    overlap_eigengap (1 - second eigenvalue of the overlap matrix), reference.

    Raises ValueError on NaN/+inf, shape/count mismatch, no samples at all, all states known, a
    known state without samples (it would carry no information), a sample with zero density under
    the state it came from, an unsampled unknown state with zero density at every sample, or
    states whose normalizers are not tied to a known one by overlapping samples.
    """
    coll = collective
    lq, n_local = coll.agree(lambda: _validated(log_q, counts))
    batch_shape, (k_states, n_samples) = lq.shape[:-2], lq.shape[-2:]
    n_k = coll.sum(n_local)  # samples of each state over all processes
    if int(n_k.sum()) == 0:
        raise ValueError("no state has samples: at least one state must be sampled")
    lq = lq.reshape(-1, k_states, n_samples)
    known, reference = _known_values(known_log_z, n_k, lq.shape[0], batch_shape, lq.device)
    sampled = n_k > 0
    free = sampled & torch.isnan(known).all(0)
    unsampled_free = ~sampled & torch.isnan(known).all(0)
    _check_support(lq, n_local, known, unsampled_free, coll)

    log_n = n_k.double().log()  # -inf for unsampled states: they do not enter the mixture
    f = torch.where(torch.isnan(known), _initial_f(lq, n_local, n_k, coll), -known)
    for _ in range(sci_iter):
        f = _sci_step(f, lq, log_n, free, coll)
    f, iterations, residual = _newton(f, lq, log_n, n_k, free, tol, max_iter, coll)
    f = _sci_step(f, lq, log_n, unsampled_free, coll)

    log_mix = torch.logsumexp(log_n[:, None] + f[:, :, None] + lq, dim=1)
    log_w = f[:, :, None] + lq - log_mix[:, None, :]  # (B, K, N)
    weights = log_w.exp()
    unknown = free | unsampled_free
    cov_f = _sandwich_cov(weights, n_k, unknown, coll)
    overlap = overlap_matrix(weights, n_k, coll)
    anchored = _anchored_overlap(weights, n_k, free, coll)
    converged = residual <= tol
    _report(converged, residual, anchored, min_overlap, strict, free)

    out_shape = (*batch_shape, k_states)
    cov = cov_f.reshape(*batch_shape, k_states, k_states)
    return Estimate(
        log_z=(-f).reshape(out_shape),
        se=torch.diagonal(cov_f, dim1=-2, dim2=-1).clamp_min(0).sqrt().reshape(out_shape),
        method="rlr",
        cov=cov,
        ess=kish_ess(log_w.permute(2, 0, 1), coll).reshape(out_shape),
        converged=converged.reshape(batch_shape),
        iterations=iterations,
        overlap=overlap.reshape(*batch_shape, k_states, k_states),
        diagnostics={
            "max_residual": residual.reshape(batch_shape),
            "anchored_overlap": anchored.reshape(batch_shape),
            "overlap_eigengap": overlap_eigengap(overlap[:, sampled][:, :, sampled]).reshape(batch_shape),
            "reference": reference,
        },
    )


def _validated(log_q: Tensor, counts: list[int] | Tensor) -> tuple[Tensor, Tensor]:
    """log_q as float64 (*batch, K, N) and the counts (K,) of its samples, validated."""
    lq = as_log_density(log_q, "log_q")
    if lq.dim() < 2:
        raise ValueError(f"log_q must have shape (*batch, K, N), got {tuple(lq.shape)}")
    return lq, as_counts(counts, lq.shape[-2], lq.shape[-1]).to(lq.device)


def _known_values(
    known_log_z: KnownLogZ | None, n_k: Tensor, batch: int, batch_shape: torch.Size, device: torch.device
) -> tuple[Tensor, int | None]:
    """(B, K) tensor of known log Z (NaN = unknown) and the reference state used when none is known."""
    k_states = n_k.numel()
    known = torch.full((batch, k_states), math.nan, dtype=torch.float64, device=device)
    if not known_log_z:
        reference = int(torch.nonzero(n_k > 0)[0])
        known[:, reference] = 0.0
        return known, reference
    for key, value in known_log_z.items():
        k = int(key)
        if not -k_states <= k < k_states:
            raise ValueError(f"known_log_z has state index {key}, but there are only {k_states} states")
        k %= k_states
        v = torch.as_tensor(value, dtype=torch.float64, device=device)
        if v.dim() > 0 and v.shape != batch_shape:
            raise ValueError(
                f"known_log_z[{key}] must be a scalar or have the batch shape "
                f"{tuple(batch_shape)}, got {tuple(v.shape)}"
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


def _any(t: Tensor, coll: Collective) -> Tensor:
    """Elementwise logical or of a boolean tensor over processes."""
    return coll.max(t.double()) > 0


def _check_support(lq: Tensor, n_local: Tensor, known: Tensor, unsampled_free: Tensor, coll: Collective) -> None:
    """Samples must have positive density under their own state; every unknown state must be tied to
    a known (or reference) state through states whose densities are positive at each other's samples.
    ``n_local``: this process's samples of each state."""
    origin = torch.repeat_interleave(torch.arange(n_local.numel(), device=lq.device), n_local)
    own = lq.gather(1, origin.expand(lq.shape[0], 1, -1)).squeeze(1)
    zero = own == -math.inf
    if bool(_any(zero.any(), coll)):
        if not bool(zero.any()):
            raise ValueError("a sample on another process has zero density under the state it was drawn from")
        b, n = zero.nonzero()[0].tolist()
        raise ValueError(
            f"sample {n} (batch {b}) has zero density under state {int(origin[n])} it was "
            "drawn from: check the ordering of samples and counts"
        )
    finite = torch.isfinite(lq)
    dead = unsampled_free[None, :] & ~_any(finite.any(-1), coll)
    if bool(dead.any()):
        b, k = dead.nonzero()[0].tolist()
        raise ValueError(
            f"unsampled state {k} (batch {b}) has zero density at every sample: its "
            "normalizer cannot be estimated; sample it or choose overlapping states"
        )
    sampled = _any(n_local > 0, coll)
    idx = sampled.nonzero().squeeze(-1)
    # link[b, k, l]: state k has positive density at some sample drawn from state l
    blocks = torch.split(finite, n_local.tolist(), dim=-1)
    link = _any(torch.stack([blocks[int(j)].any(-1) for j in idx], -1), coll)
    link = link[:, idx]
    reach = (link | link.transpose(1, 2)).double()
    reach = reach + torch.eye(idx.numel(), dtype=torch.float64, device=lq.device)
    for _ in range(max(1, math.ceil(math.log2(max(idx.numel(), 2))))):
        reach = (reach @ reach > 0).double()
    anchored = reach[:, :, ~torch.isnan(known[0, idx])].sum(-1) > 0
    if not bool(anchored.all()):
        b, j = (~anchored).nonzero()[0].tolist()
        raise ValueError(
            f"state {int(idx[j])} (batch {b}) does not overlap any state with a known or "
            "reference normalizer (zero density at all of their samples): its normalizer "
            "is not identifiable; add intermediate states or fix its log Z"
        )


def _initial_f(lq: Tensor, n_local: Tensor, n_k: Tensor, coll: Collective) -> Tensor:
    """Crude start: f_k = -log mean of h_k over the samples of state k (0 for unsampled states)."""
    f = torch.zeros(lq.shape[:2], dtype=torch.float64, device=lq.device)
    start = 0
    for k, (c, total) in enumerate(zip(n_local.tolist(), n_k.tolist())):
        if total:
            f[:, k] = -(coll.logsumexp(lq[:, k, start : start + c], -1) - math.log(total))
        start += c
    return f


def _log_mixture(f: Tensor, lq: Tensor, log_n: Tensor) -> Tensor:
    """log sum_l N_l exp(f_l + log_q[l, n]), (B, N)."""
    return torch.logsumexp(log_n[:, None] + f[:, :, None] + lq, dim=1)


def _sci_step(f: Tensor, lq: Tensor, log_n: Tensor, mask: Tensor, coll: Collective) -> Tensor:
    """Self-consistent update f_k = -log sum_n h_k(x_n) / mixture(x_n) for the states in ``mask``."""
    new = -coll.logsumexp(lq - _log_mixture(f, lq, log_n)[:, None, :], dim=-1)
    return torch.where(mask, new, f)


def _objective(f: Tensor, lq: Tensor, log_n: Tensor, n_k: Tensor, free: Tensor, coll: Collective) -> Tensor:
    """F(f) (B,) up to the constant contributed by fixed states."""
    return coll.sum(_log_mixture(f, lq, log_n).sum(-1)) - (n_k.double() * torch.where(free, f, 0.0)).sum(-1)


def _grad_hess(
    f: Tensor, lq: Tensor, log_n: Tensor, n_k: Tensor, free: Tensor, coll: Collective
) -> tuple[Tensor, Tensor]:
    """Gradient (B, F) and Hessian (B, F, F) of F over the free sampled states."""
    p = torch.softmax(log_n[:, None] + f[:, :, None] + lq, dim=1)[:, free, :]  # (B, F, N)
    col = coll.sum(p.sum(-1))
    grad = col - n_k[free].double()
    hess = torch.diag_embed(col) - coll.sum(p @ p.transpose(1, 2))
    return grad, hess


def _newton(
    f: Tensor, lq: Tensor, log_n: Tensor, n_k: Tensor, free: Tensor, tol: float, max_iter: int, coll: Collective
) -> tuple[Tensor, int, Tensor]:
    """Damped Newton on F over the free sampled states; returns (f, iterations, max residual (B,))."""
    n_free = n_k[free].double()
    residual = torch.zeros(f.shape[0], dtype=torch.float64, device=f.device)
    if not bool(free.any()):
        return f, 0, residual
    iterations = 0
    for iterations in range(max_iter + 1):
        grad, hess = _grad_hess(f, lq, log_n, n_k, free, coll)
        residual = (grad / n_free).abs().amax(-1)
        active = residual > tol
        if not bool(active.any()) or iterations == max_iter:
            break
        step = -(torch.linalg.pinv(hess, hermitian=True) @ grad.unsqueeze(-1)).squeeze(-1)
        step = torch.where(active[:, None], step, 0.0)
        f = _line_search(f, step, grad, lq, log_n, n_k, free, coll)
    return f, iterations, residual


def _line_search(
    f: Tensor, step: Tensor, grad: Tensor, lq: Tensor, log_n: Tensor, n_k: Tensor, free: Tensor, coll: Collective
) -> Tensor:
    """Armijo backtracking on F, per batch item; falls back to the smallest step tried."""
    f0 = _objective(f, lq, log_n, n_k, free, coll)
    slope = (grad * step).sum(-1)
    t = torch.ones_like(f0)
    done = step.abs().amax(-1) == 0
    full = torch.zeros_like(f)
    new = f
    for _ in range(50):
        full[:, free] = t[:, None] * step
        cand = f + full
        ok = _objective(cand, lq, log_n, n_k, free, coll) <= f0 + 1e-4 * t * slope + 1e-12 * f0.abs()
        take = ok & ~done
        new = torch.where(take[:, None], cand, new)
        done = done | ok
        if bool(done.all()):
            break
        t = torch.where(done, t, t / 2)
    return torch.where(done[:, None], new, f + full)


def _sandwich_cov(weights: Tensor, n_k: Tensor, unknown: Tensor, coll: Collective) -> Tensor:
    """Covariance (B, K, K) of f (= of log Z) from the estimating equations sum_n W_nk = 1, k unknown.

    J_kl = delta_kl sum_n W_nk - N_l sum_n W_nk W_nl;  V = sum_j N_j Cov_j(W_u), the moments of
    state j estimated by self-normalised reweighting of the pooled samples with W_nj.
    """
    b, k_states, _ = weights.shape
    cov = torch.zeros(b, k_states, k_states, dtype=torch.float64, device=weights.device)
    if not bool(unknown.any()):
        return cov
    nd = n_k.double()
    w_u = weights[:, unknown, :]  # (B, U, N)
    w_bar = weights / coll.sum(weights.sum(-1, keepdim=True)).clamp_min(torch.finfo(torch.float64).tiny)
    c_n = (nd[None, :, None] * w_bar).sum(1)  # (B, N)
    m = coll.sum(w_bar @ w_u.transpose(1, 2))  # (B, K, U): E_j[W_u]
    v = coll.sum((w_u * c_n[:, None, :]) @ w_u.transpose(1, 2)) - m.transpose(1, 2) @ (nd[None, :, None] * m)
    jac = torch.diag_embed(coll.sum(w_u.sum(-1))) - coll.sum(w_u @ w_u.transpose(1, 2)) * nd[unknown][None, None, :]
    j_inv = torch.linalg.pinv(jac)
    sub = j_inv @ v @ j_inv.transpose(1, 2)
    idx = unknown.nonzero().squeeze(-1)
    cov[:, idx[:, None], idx[None, :]] = sub
    return cov


def _anchored_overlap(weights: Tensor, n_k: Tensor, free: Tensor, coll: Collective) -> Tensor:
    """Smallest eigenvalue of the normalised Hessian D^-1/2 H D^-1/2 of F over the free sampled
    states (D = its diagonal part), (B,).  At the solution this is I - N^1/2 W^T W N^1/2.

    Near 0 the free normalizers are not determined by the data (no overlap with the fixed states);
    1 when no sampled state is free.
    """
    if not bool(free.any()):
        return torch.ones(weights.shape[0], dtype=torch.float64, device=weights.device)
    p = weights[:, free, :] * n_k[free].double()[None, :, None]
    p = p / coll.sum(p.sum(-1, keepdim=True)).sqrt()
    m = torch.eye(int(free.sum()), dtype=torch.float64, device=weights.device) - coll.sum(p @ p.transpose(1, 2))
    return torch.linalg.eigvalsh(m)[:, 0]


def _report(
    converged: Tensor, residual: Tensor, anchored: Tensor, min_overlap: float, strict: bool, free: Tensor
) -> None:
    """Raise on zero overlap; warn (or raise if strict) on non-convergence or low overlap."""
    zero = anchored < 1e-10
    if bool(zero.any()):
        b = int(zero.nonzero()[0])
        raise ValueError(
            f"states do not overlap (anchored overlap {float(anchored[b]):.2e} in batch {b}): "
            "the unknown normalizers are not determined by the samples; add intermediate "
            "states, more samples, or fix more normalizers"
        )
    problems = []
    if not bool(converged.all()):
        bad = (~converged).nonzero().squeeze(-1)
        problems.append(
            f"solver did not converge for {bad.numel()} problem(s) (max residual "
            f"{float(residual.max()):.2e}); see Estimate.converged"
        )
    low = anchored < min_overlap
    if bool(low.any()):
        problems.append(
            f"low overlap (anchored overlap {float(anchored.min()):.2e} < {min_overlap}) in "
            f"{int(low.sum())} problem(s): analytic standard errors are unreliable"
        )
    if problems:
        message = "rlr: " + "; ".join(problems)
        if strict:
            raise ValueError(message)
        warnings.warn(message, EstimatorWarning, stacklevel=3)
