"""What :func:`~ebmlab.estimators.rlr` computes at the solution: the deterministic-mixture step for
unsampled states, the weight moments, the sandwich covariance, the anchored overlap and the report."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .estimate import EstimatorWarning
from .frames import Mixture, shifted
from .solvers import Solution


@dataclass(frozen=True)
class Moments:
    """Sums over the pooled samples of the weights W_nk at the solution.

    colsum: (B, K) sum_n W_nk; gram: (B, K, K) sum_n W_nk W_nl; gram_c: (B, U, U) sum_n c_n W_nk W_nl
    over the unknown states, with c_n = sum_j N_j W_nj / sum_m W_mj.
    """

    colsum: Tensor
    gram: Tensor
    gram_c: Tensor


def dm_step(mx: Mixture, sol: Solution, states: Tensor) -> Tensor:
    """f (B, K) with the ``states`` (K,) bool set by one self-consistent step against the mixture:
    f_k = -log sum_n h_k(x_n) / sum_l N_l exp(f_l) h_l(x_n) (DM-MIS with the mixture as proposal)."""
    f = sol.f.clone()
    idx = states.nonzero().squeeze(-1)
    if idx.numel() == 0:
        return f
    acc = torch.full((f.shape[0], idx.numel()), -math.inf, dtype=f.dtype, device=f.device)
    for sh in shifted(mx, sol.frame):
        big = sol.point.big_s[:, sh.start : sh.start + sh.own.shape[-1]]
        rest = (sh.m + big.log()).unsqueeze(1)  # log mixture - top
        acc = torch.logaddexp(acc, torch.logsumexp((sh.block[:, idx] - sh.top.unsqueeze(1)) - rest, -1))
    f[:, idx] = -mx.coll.logsumexp(acc.unsqueeze(-1), -1)
    return f


def moments(mx: Mixture, sol: Solution, f: Tensor, unknown: Tensor, n_k: Tensor) -> Moments:
    """The weight moments at the solution f (B, K).  Over the mixture they come from the solver's
    final Gram matrix; a pass over the samples adds the states outside it (unsampled) and, when a
    known state's weights do not sum to 1, the c_n-weighted Gram matrix."""
    b, k = f.shape
    c = mx.log_c.exp()
    point = sol.point
    colsum = f.new_zeros(b, k)
    colsum[:, mx.mix] = point.colsum / c
    gram = f.new_zeros(b, k, k)
    assert point.gram is not None, "the solver keeps its final Gram matrix"
    gram[:, mx.mix[:, None], mx.mix[None, :]] = point.gram / (c.unsqueeze(-1) * c)
    ratio = c / point.colsum  # N_j / sum_n V_nj = 1 / sum_n W_nj
    weighted = bool(((ratio - 1).abs() > 1e-9).any())  # else c_n = 1 for every sample
    outside = (n_k == 0).nonzero().squeeze(-1)
    u = unknown.nonzero().squeeze(-1)
    gram_c = f.new_zeros(b, u.numel(), u.numel())
    if outside.numel() or weighted:
        s = point.delta.exp()
        out_gram = f.new_zeros(b, outside.numel(), k)
        for sh in shifted(mx, sol.frame):
            big = point.big_s[:, sh.start : sh.start + sh.own.shape[-1]]
            v = sh.responsibilities(s, big)  # V_nk = N_k W_nk over the mixture
            w = f.new_zeros(b, k, big.shape[-1])
            w[:, mx.mix] = v / c.unsqueeze(-1)
            if outside.numel():
                rest = (sh.m + big.log()).unsqueeze(1)
                w[:, outside] = torch.exp((sh.block[:, outside] - sh.top.unsqueeze(1)) + f[:, outside, None] - rest)
                out_gram += w[:, outside] @ w.transpose(1, 2)
            if weighted:
                w_u = w[:, u]
                c_n = torch.bmm(ratio.unsqueeze(1), v).squeeze(1)
                gram_c += (w_u * c_n.unsqueeze(1)) @ w_u.transpose(1, 2)
        out_gram = mx.coll.sum(out_gram)
        gram[:, outside] = out_gram
        gram[:, :, outside] = out_gram.transpose(1, 2)
        colsum[:, outside] = 1.0  # exactly, by the self-consistent step
        gram_c = mx.coll.sum(gram_c)
    if not weighted:
        gram_c = gram[:, u][:, :, u]
    return Moments(colsum, gram, gram_c)


def sandwich_cov(mom: Moments, n_k: Tensor, unknown: Tensor) -> Tensor:
    """Covariance (B, K, K) of f (= of log Z) from the estimating equations sum_n W_nk = 1, k unknown.

    J_kl = delta_kl sum_n W_nk - N_l sum_n W_nk W_nl;  V = sum_j N_j Cov_j(W_u), the moments of
    state j estimated by self-normalised reweighting of the pooled samples with W_nj.
    """
    b, k_states = mom.colsum.shape
    cov = mom.colsum.new_zeros(b, k_states, k_states)
    idx = unknown.nonzero().squeeze(-1)
    if idx.numel() == 0:
        return cov
    nd = n_k.double()
    colsum = mom.colsum.clamp_min(torch.finfo(torch.float64).tiny)
    m = mom.gram[:, :, idx] / colsum.unsqueeze(-1)  # (B, K, U): E_j[W_u]
    v = mom.gram_c - m.transpose(1, 2) @ (nd[None, :, None] * m)
    jac = torch.diag_embed(mom.colsum[:, idx]) - mom.gram[:, idx][:, :, idx] * nd[idx]
    j_inv = torch.linalg.pinv(jac)
    cov[:, idx[:, None], idx[None, :]] = j_inv @ v @ j_inv.transpose(1, 2)
    return cov


def anchored_overlap(mom: Moments, n_k: Tensor, free: Tensor) -> Tensor:
    """Smallest eigenvalue of the normalised Hessian D^-1/2 H D^-1/2 of F over the free sampled
    states (D = its diagonal part), (B,): I - P P^T with P_kn = N_k W_nk / sqrt(N_k sum_n W_nk).

    Near 0 the free normalizers are not determined by the data (no overlap with the fixed states);
    1 when no sampled state is free.
    """
    idx = free.nonzero().squeeze(-1)
    if idx.numel() == 0:
        return torch.ones(mom.colsum.shape[0], dtype=torch.float64, device=mom.colsum.device)
    nd = n_k.double()[idx]
    scale = nd / (nd * mom.colsum[:, idx]).sqrt()  # (B, F)
    pp = mom.gram[:, idx][:, :, idx] * scale.unsqueeze(-1) * scale.unsqueeze(-2)
    eye = torch.eye(idx.numel(), dtype=torch.float64, device=pp.device)
    return torch.linalg.eigvalsh(eye - pp)[:, 0]


def report(converged: Tensor, residual: Tensor, anchored: Tensor, min_overlap: float, strict: bool) -> None:
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
