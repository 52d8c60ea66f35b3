"""Per-group bookkeeping for a population of B independent walker sets held as one flat engine population.

The kernels and the log-weight increments (:mod:`ebmlab.sampling.smc`) act walker by walker, so B fits can share
one flat population of B * N walkers (group-major: walker i of group b is row b * N + i).  Everything that
normalises weights is per group: here the log-weights are viewed as (N, B) (walkers first, as the walker-set
functions of :mod:`ebmlab.sampling.walkers` reduce over dimension 0) and summarised into a
:class:`~ebmlab.sampling.summary.WeightSummary` whose fields are (B,) tensors, so its ESS, log-mean weight and the
genealogy standard error (:func:`~ebmlab.sampling.walkers.relvar_from`) are the engine's formulas, per group.
The log Z reference (B,), the resampling count (B,) and the Eve indices (within the group) are per group too.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from ..sampling.resampling import get_resampler
from ..sampling.summary import WeightSummary
from ..sampling.walkers import Walkers, normalized_weights, relvar_from


def by_walker(log_w: Tensor, groups: int) -> Tensor:
    """Flat group-major log-weights (B * N,) as (N, B)."""
    return log_w.view(groups, -1).T


def group_summary(walkers: Walkers, groups: int) -> WeightSummary:
    """The :class:`WeightSummary` of every group at once (fields (B,)); ``same`` from the per-group genealogy."""
    a = by_walker(walkers.log_w, groups).double()
    m = a.max(0).values
    shift = torch.where(torch.isfinite(m), m, 0.0)
    z = a - shift
    lse, lse2 = torch.logsumexp(z, 0), torch.logsumexp(2 * z, 0)
    if walkers.eve is None:
        same = torch.exp(lse2 - 2 * lse)
    else:
        w = torch.exp(z - lse).T  # (B, N) normalised
        same = torch.zeros_like(w).scatter_add_(1, walkers.eve.view(groups, -1), w).square().sum(1)
    return WeightSummary(a.shape[0], m, shift, lse, lse2, same)


def group_weights(walkers: Walkers, groups: int) -> Tensor:
    """Normalised weights (B, N), float64, each group summing to one."""
    return normalized_weights(by_walker(walkers.log_w, groups)).T


def group_log_z(walkers: Walkers, summary: WeightSummary) -> Tensor:
    """log Z_hat per group (B,): reference + logmeanexp(A)."""
    return walkers.log_z_ref + summary.log_mean


def group_log_z_se(walkers: Walkers, summary: WeightSummary) -> Tensor:
    """Genealogy standard error of log Z_hat per group (B,), nats (NaN after non-multinomial resampling)."""
    se = torch.log1p(relvar_from(summary, walkers.n_resamplings).clamp_min(0.0)).sqrt()
    return se if walkers.multinomial_only else torch.full_like(se, math.nan)


def start_groups(walkers: Walkers, log_w0: Tensor, log_z_ref: Tensor) -> Walkers:
    """Engine walkers (flat) given per-group initial log-weights (B, N) and references (B,); counts per group."""
    b = log_z_ref.shape[0]
    counts = torch.zeros(b, dtype=torch.long)
    return replace(walkers, log_w=log_w0.reshape(-1).double(), log_z_ref=log_z_ref.double(), n_resamplings=counts)


def resample_groups(
    walkers: Walkers, summary: WeightSummary, threshold: float | None, scheme: str, generator: torch.Generator
) -> tuple[Walkers, Tensor]:
    """Resample each group whose ESS/N < threshold by its own weights (the engine's ``scheme``); its
    log-weights become 0 and its reference absorbs logmeanexp(A).  Returns (walkers, resampled (B,) bool)."""
    frac = summary.ess_fraction
    if threshold is None:
        return walkers, torch.zeros_like(frac, dtype=torch.bool)
    if not bool((summary.max > -math.inf).all()):
        raise ValueError(
            "a group has no walker with a usable weight (all log-weights -inf or NaN): the potential changed too "
            "much for its walkers to follow (smaller learning rate or step size)"
        )
    todo = (frac < threshold).nonzero().squeeze(1).tolist()
    if not todo:
        return walkers, frac < threshold
    b, n = frac.shape[0], walkers.n // frac.shape[0]
    w = group_weights(walkers, b)
    idx = torch.arange(b * n).view(b, n)
    eve = torch.arange(n).repeat(b).view(b, n) if walkers.eve is None else walkers.eve.view(b, n).clone()
    log_w, ref = walkers.log_w.view(b, n).clone(), walkers.log_z_ref.clone()
    resampler = get_resampler(scheme)
    for g in todo:
        pick = resampler(w[g] / w[g].sum(), n, generator)
        idx[g] = g * n + pick
        eve[g] = eve[g, pick]
        log_w[g] = 0.0
        ref[g] = ref[g] + summary.log_mean[g]
    done = frac < threshold
    walkers = Walkers(
        walkers.state.index(idx.reshape(-1)),
        log_w.reshape(-1),
        ref,
        eve.reshape(-1),
        walkers.n_resamplings + done.long(),
        walkers.multinomial_only and scheme == "multinomial",
    )
    return walkers, done


__all__ = [
    "by_walker",
    "group_log_z",
    "group_log_z_se",
    "group_summary",
    "group_weights",
    "resample_groups",
    "start_groups",
]
