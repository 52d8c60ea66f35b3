"""ESS-controlled parameter updates (in the spirit of adaptive tempering in SMC samplers).

An optimiser step proposes theta_k -> theta_k + Delta.  Committing a fraction lambda of it,
theta_k + lambda Delta, gives the walkers the AIS increment a_i(lambda) = U_k(x_i) - U_lambda(x_i).
The conditional ESS of that increment (:func:`~ebmlab.sampling.walkers.conditional_ess_fraction`)
is 1 at lambda = 0 and falls as lambda grows; :func:`commit_update` keeps the whole step when its
CESS reaches the target and otherwise bisects for the largest lambda that does, so the weights never
degenerate in one update.  The weights stay exact: they are computed with the committed parameters.

:func:`adapt_update` is the ESS-adaptive learning rate (in the spirit of SOSMC, Cuin et al. 2026): a
running scale s multiplies every optimiser step; an update whose conditional ESS falls below the target is
retried at s/2, s/4, ... until it reaches it, and s grows back by ``LR_GROWTH`` (up to 1) after each update
committed at the full current scale.  Unlike :func:`commit_update`, the scale carries over between
updates, so a learning rate too large for the walkers is lowered once rather than bisected every time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..distributed import LOCAL, Collective
from ..sampling.walkers import Walkers, conditional_ess_fraction

BISECTIONS = 10  # lambda is resolved to 2**-10; it never falls below that, so training always moves
LR_GROWTH = 2.0**0.25  # growth of the adaptive scale after an update committed at the full scale
LR_MIN_SCALE = 2.0**-20  # below this an update that still degrades the weights too much is skipped


def snapshot(params: Sequence[Tensor]) -> list[Tensor]:
    """Detached copies of the parameters (taken before the optimiser step)."""
    return [p.detach().clone() for p in params]


class _Fraction:
    """Puts the parameters at theta_k + lambda Delta and measures the conditional ESS of that change."""

    def __init__(
        self, energy: nn.Module, params: Sequence[Tensor], before: Sequence[Tensor], walkers: Walkers, coll: Collective
    ):
        self.energy, self.params, self.before, self.walkers, self.coll = energy, params, before, walkers, coll
        self.after = snapshot(params)

    def set_at(self, lam: float) -> None:
        for p, b, a in zip(self.params, self.before, self.after):
            p.copy_(torch.lerp(b, a, lam))

    def cess_at(self, lam: float) -> float:
        self.set_at(lam)
        w = self.walkers
        u = self.energy(w.x)
        return float(conditional_ess_fraction(w.log_w, w.state.energy.double() - u.double(), self.coll))


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
    frac = _Fraction(energy, params, before, walkers, coll)
    cess_at = frac.cess_at
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
    frac.set_at(lo)
    return lo, cess_lo


@torch.no_grad()
def adapt_update(
    energy: nn.Module,
    params: Sequence[Tensor],
    before: Sequence[Tensor],
    walkers: Walkers,
    target: float,
    scale: float,
    coll: Collective = LOCAL,
) -> tuple[float, float, float]:
    """Commit ``scale`` times the optimiser step just taken (``params`` hold theta_k + Delta, ``before``
    theta_k), halving the fraction until the conditional ESS on ``walkers`` (cached under theta_k) is at least
    ``target``; below ``LR_MIN_SCALE`` the update is skipped (fraction 0, CESS 1), so every committed update
    keeps CESS >= target.  Returns (committed fraction, its CESS/N, the scale for the next update)."""
    if not 0 < scale <= 1:
        raise ValueError(f"the adaptive learning-rate scale must lie in (0, 1], got {scale!r}")
    frac = _Fraction(energy, params, before, walkers, coll)
    lam = scale
    while lam >= LR_MIN_SCALE:
        c = frac.cess_at(lam)
        if c >= target:
            return lam, c, min(1.0, lam * LR_GROWTH) if lam == scale else lam
        lam *= 0.5
    frac.set_at(0.0)
    return 0.0, 1.0, LR_MIN_SCALE
