"""Global summaries of weighted populations, several at once from one collective call.

Everything the trainer reads off its walkers' log-weights A (ESS, log Z estimate, genealogy standard
error, the normaliser of the gradient's weights, the "every weight is zero" check) follows from a few
numbers per process: max_r = max A over the shard, lse_r = log sum exp(A - M_r) and lse2_r =
log sum exp(2 (A - M_r)) with M_r = max_r when finite (else 0), and, after a multinomial resampling,
the shard's total weight per Eve.  :func:`summarize` gathers those of any number of populations,
plus per-process vectors to be maxed or summed (divergence checks, acceptance counts), in one
all_gather and combines them stably: with M = max_r M_r, lse = log sum_r exp(lse_r + M_r - M).

On one process the combination is exact: ESS and logmeanexp(A) are bit for bit those of
:func:`~ebmlab.sampling.walkers.ess` and :func:`~ebmlab.sampling.walkers.log_mean_weight`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective

HEAD = 4  # max, shift, lse, lse2


@dataclass(frozen=True)
class WeightSummary:
    """One population's log-weights A (N walkers over all processes), summarised; float64 scalars.

    max: max_i A_i (-inf when every weight is zero, NaN when any is NaN).  shift: the reference M
    (finite).  lse, lse2: log sum_i exp(A_i - M) and log sum_i exp(2 (A_i - M)).  same: sum over
    Eves of the squared total normalised weight of their descendants (sum_i w_i^2 without genealogy).
    """

    n: int
    max: Tensor
    shift: Tensor
    lse: Tensor
    lse2: Tensor
    same: Tensor

    @property
    def log_norm(self) -> Tensor:
        """logsumexp(A): the normaliser of the weights, w_i = exp(A_i - log_norm)."""
        return self.shift + self.lse

    @property
    def log_mean(self) -> Tensor:
        """logmeanexp(A)."""
        return self.log_norm - math.log(self.n)

    @property
    def ess_fraction(self) -> Tensor:
        """Kish ESS / N = exp(2 lse - lse2) / N."""
        return torch.exp(2 * self.lse - self.lse2) / self.n


def local_stats(log_w: Tensor, eve: Tensor | None, n_total: int) -> Tensor:
    """This process's part of a summary: [max, shift, lse, lse2] and, with a genealogy ``eve`` (global
    Eve indices (n,)), the shard's weight exp(A - shift) per Eve (n_total,); float64."""
    a = log_w.double()
    m = a.max() if a.numel() else a.new_tensor(-math.inf)
    shift = torch.where(torch.isfinite(m), m, 0.0)
    z = a - shift
    head = torch.stack([m, shift, torch.logsumexp(z, 0), torch.logsumexp(2 * z, 0)])
    if eve is None:
        return head
    return torch.cat([head, a.new_zeros(n_total).index_add_(0, eve, z.exp())])


def combine(parts: Tensor, n_total: int, genealogy: bool) -> WeightSummary:
    """The summary from every process's :func:`local_stats` (P, 4 [+ n_total])."""
    m, shift, lse_r, lse2_r = parts[:, :HEAD].unbind(1)
    ref = shift.max()
    off = shift - ref
    lse = torch.logsumexp(lse_r + off, 0)
    lse2 = torch.logsumexp(lse2_r + 2 * off, 0)
    if genealogy:
        same = (torch.exp(off - lse) @ parts[:, HEAD:]).square().sum()
    else:
        same = torch.exp(lse2 - 2 * lse)
    return WeightSummary(n_total, m.max(), ref, lse, lse2, same)


@dataclass(frozen=True)
class Population:
    """What :func:`summarize` needs of a population: this process's log-weights (n,), the global Eve
    index of each walker or None, and whether the genealogy standard error is wanted."""

    log_w: Tensor
    eve: Tensor | None
    genealogy: bool


def summarize(
    populations: Sequence[Population | None],
    coll: Collective = LOCAL,
    maxed: Tensor | None = None,
    summed: Tensor | None = None,
) -> tuple[list[WeightSummary | None], Tensor | None, Tensor | None]:
    """Summaries of ``populations`` (None stays None) and the elementwise max over processes of
    ``maxed`` (k,) and sum of ``summed`` (j,), all from one all_gather of float64 vectors."""
    n_total = [0 if p is None else coll.numel(p.log_w) for p in populations]  # 0: no population
    pieces = [
        local_stats(p.log_w, p.eve if p.genealogy else None, n) for p, n in zip(populations, n_total) if p is not None
    ]
    extra = [t.double().reshape(-1) for t in (maxed, summed) if t is not None]
    sizes = [t.numel() for t in pieces + extra]
    parts = coll.gather(torch.cat([t.to(pieces[0].device if pieces else "cpu") for t in pieces + extra]).unsqueeze(0))
    split = list(parts.split(sizes, 1))
    out: list[WeightSummary | None] = []
    for p, n in zip(populations, n_total):
        out.append(None if p is None else combine(split.pop(0), n, p.genealogy and p.eve is not None))
    mx = split.pop(0).amax(0) if maxed is not None else None
    sm = split.pop(0).sum(0) if summed is not None else None
    return out, mx, sm
