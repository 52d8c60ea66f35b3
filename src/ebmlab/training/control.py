"""ESS-controlled parameter updates (in the spirit of adaptive tempering in SMC samplers).

An optimiser step proposes theta_k -> theta_k + Delta.  Committing a fraction lambda of it,
theta_k + lambda Delta, gives the walkers the AIS increment a_i(lambda) = U_k(x_i) - U_lambda(x_i).
The conditional ESS of that increment (:func:`~ebmlab.sampling.walkers.conditional_ess_fraction`)
is 1 at lambda = 0 and falls as lambda grows; :func:`commit_update` keeps the whole step when its
CESS reaches the target and otherwise bisects for the largest lambda that does, so the weights never
degenerate in one update.  The weights stay exact: they are computed with the committed parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..distributed import LOCAL, Collective
from ..sampling.walkers import Walkers, conditional_ess_fraction

BISECTIONS = 10  # lambda is resolved to 2**-10; it never falls below that, so training always moves


def snapshot(params: Sequence[Tensor]) -> list[Tensor]:
    """Detached copies of the parameters (taken before the optimiser step)."""
    return [p.detach().clone() for p in params]


@torch.no_grad()
def commit_update(
    energy: nn.Module,
    params: Sequence[Tensor],
    before: Sequence[Tensor],
    walkers: Walkers,
    target: float,
    coll: Collective = LOCAL,
) -> tuple[float, float]:
    """Shorten the optimiser step just taken (``params`` now hold theta_k + Delta, ``before`` theta_k) to
    the largest fraction lambda in [2**-10, 1] whose conditional ESS on ``walkers`` (cached under theta_k)
    is at least ``target``; the parameters are left at the committed value.  Returns (lambda, CESS/N).
    """
    after = snapshot(params)

    def set_at(lam: float) -> None:
        for p, b, a in zip(params, before, after):
            p.copy_(torch.lerp(b, a, lam))

    def cess_at(lam: float) -> float:
        set_at(lam)
        u = energy(walkers.x)
        return float(conditional_ess_fraction(walkers.log_w, walkers.state.energy.double() - u.double(), coll))

    cess_hi = cess_at(1.0)
    if cess_hi >= target:
        return 1.0, cess_hi
    lo, hi, cess_lo = 0.0, 1.0, 1.0
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        c = cess_at(mid)
        if c >= target:
            lo, cess_lo = mid, c
        else:
            hi, cess_hi = mid, c
    if lo == 0.0:  # even the smallest fraction degrades the weights more than asked: take it anyway
        lo, cess_lo = hi, cess_hi
    set_at(lo)
    return lo, cess_lo
