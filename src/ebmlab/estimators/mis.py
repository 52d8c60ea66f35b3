"""Multiple importance sampling with J normalised proposals (standard and deterministic-mixture weights).

Pooled draws y_n, N_j of them from q_j (ordered by proposal).  Standard MIS weights each draw by its
own proposal, Z_hat = (1/N) sum_j sum_i phi(y_ji) / q_j(y_ji); the deterministic mixture (balance
heuristic) uses psi = sum_k (N_k/N) q_k, Z_hat = (1/N) sum_n phi(y_n) / psi(y_n) (never larger variance).
Standard errors are stratified (within-proposal variances).  With J = 1 both are plain IS.  DM-MIS
equals :func:`rlr` with an unsampled target and every proposal normalizer fixed (equivalence E4).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..uncertainty import se_from_relvar
from .estimate import Estimate, log_mean_relvar
from .two_sample import NO_TARGET_MASS
from .validation import as_counts, as_log_density, require_overlap

WEIGHTS = ("deterministic-mixture", "standard")


def mis(
    log_phi: Tensor, log_q: Tensor, counts: list[int] | Tensor, *, weights: str = "deterministic-mixture"
) -> Estimate:
    """MIS estimate of log Z.

    log_phi: (..., N) log target density at the pooled draws.
    log_q: (..., J, N) log density of every normalised proposal at every draw (for 'standard' only
        each draw's own proposal is used).
    counts: (J,) draws per proposal, in pooled order.
    weights: 'deterministic-mixture' or 'standard'.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    lp = as_log_density(log_phi, "log_phi")
    lq = as_log_density(log_q, "log_q")
    if lq.dim() < 2 or lq.shape[:-2] != lp.shape[:-1] or lq.shape[-1] != lp.shape[-1]:
        raise ValueError(
            f"log_q must have shape (*batch, J, N) matching log_phi (*batch, N) = "
            f"{tuple(lp.shape)}; got {tuple(lq.shape)}"
        )
    n_j = as_counts(counts, lq.shape[-2], lq.shape[-1])
    if bool((n_j == 0).any()):
        raise ValueError(f"every proposal needs at least one draw, got counts {n_j.tolist()}; drop unused ones")
    origin = torch.repeat_interleave(torch.arange(n_j.numel(), device=lq.device), n_j.to(lq.device))
    own = lq.gather(-2, origin.expand(*lq.shape[:-2], 1, -1)).squeeze(-2)
    if bool((own == -math.inf).any()):
        raise ValueError(
            "a draw has zero density under the proposal it came from: check the ordering of draws and counts"
        )
    require_overlap(lp == -math.inf, NO_TARGET_MASS, "reaches the target's support")
    if weights == "standard":
        log_psi = own
    else:
        log_mix_weights = (n_j.double() / n_j.sum()).log().to(lq.device)
        log_psi = torch.logsumexp(lq + log_mix_weights[:, None], dim=-2)
    log_z, relvar, ess = log_mean_relvar(lp - log_psi, n_j.tolist())
    return Estimate(log_z=log_z, se=se_from_relvar(relvar), method=f"mis-{weights}", ess=ess)
