"""The one solver for log normalizers from pooled samples: RLR = MBAR, and through the equivalences
E1/E2 also the optimal bridge (Meng-Wong) and NCE with only the normalizer learned.

The unknown f_k = -log Z_k of the free states minimise the convex

    F(f) = sum_n w_n log sum_k c_k exp(f_k) h_k(x_n) - sum_{k free} c_k f_k

over the states of the mixture (the sampled ones), other f_k held fixed; c_k are the mixture weights
(sample counts, times a per-state sample weight that is 1 except for a bridge with a chosen nu) and
w_n the weight of sample n (c_k = sum of w_n over state k's samples).  At the solution
sum_n w_n W_nk = 1 for each free k, W_nk = exp(f_k) h_k(x_n) / sum_l c_l exp(f_l) h_l(x_n).

Representation (:mod:`.frames`): against a reference point f_ref, E_kn <= 1 is built once per
reference.  A point f = f_ref + delta enters only through s = exp(delta): the mixture
is S_n = sum_k s_k E_kn, the responsibilities V_nk = c_k W_nk = s_k E_kn / S_n.  Each evaluation is
a few matrix-vector products plus, for Newton, one Gram matrix E diag(w / S^2) E^T; no exponentials.
f is carried as delta, so an offset in the log densities costs no precision.  The reference moves
when some |delta| exceeds ``REFRESH`` nats.

Sums are split so that none cancels: with R_n = S_n - s_j E_jn (the mixture without the sample's own
state j, summed directly), the gradient dF/df_k = inflow_k - outflow_k, inflow = sum over other
states' samples of w_n V_nk, outflow = sum over k's samples of w_n R_n / S_n; the Hessian is the
Laplacian of the Gram matrix; the change of F along a step is summed per sample as a log1p.  So the
solver stays exact when states barely overlap (weights ~1e-40 in the limits of E5).

Iteration: self-consistent steps f_k <- f_k - log(1 + dF/df_k / c_k) (SCI; for two states a fixed-
point form of the Meng-Wong equation), then Newton steps (pseudo-inverse Hessian, at most
``MAX_STEP`` nats) with an Armijo line search.  Stops when the relative imbalance
|inflow_k - outflow_k| / (inflow_k + outflow_k) (about the error of f_k in nats) <= tol for every
free state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .frames import Frame, Mixture, bmv, make_frame, shifted

REFRESH = 30.0
MAX_STEP = 50.0
ARMIJO = 1e-4
ROUNDING = 1e-12  # relative size of a change in F that is indistinguishable from rounding


@dataclass(frozen=True)
class Point:
    """A point f = f_ref + delta with the mixture S_n and R_n (B, N) at this process's samples, and sums:
    own (B, M) = sum over state k's samples of w_n V_nk, inflow (B, M) = sum over the other states'
    samples of w_n V_nk, outflow (B, M) = sum over state k's samples of w_n R_n / S_n,
    gram (B, M, M) = sum_n w_n V_nk V_nl (None when not asked for)."""

    delta: Tensor
    big_s: Tensor
    rest: Tensor
    own: Tensor
    inflow: Tensor
    outflow: Tensor
    gram: Tensor | None

    @property
    def colsum(self) -> Tensor:
        """sum_n w_n V_nk (B, M)."""
        return self.own + self.inflow

    @property
    def grad(self) -> Tensor:
        """dF/df_k = sum_n w_n V_nk - c_k = inflow - outflow (B, M)."""
        return self.inflow - self.outflow


@dataclass(frozen=True)
class Solution:
    """f (B, K) of every state (free ones solved), iterations used, max residual (B,), and the final
    frame and point (with its Gram matrix, for the moments at the solution)."""

    f: Tensor
    iterations: int
    residual: Tensor
    frame: Frame
    point: Point


def evaluate(
    mx: Mixture, frame: Frame, delta: Tensor, gram: bool, prev: Point | None = None
) -> tuple[Point, Tensor, Tensor]:
    """The point f_ref + delta, and (when ``prev`` is given) F(point) - F(prev) with its rounding scale.

    Per sample n of state j the change of F is log(S_n / (S_n^prev e^(delta_j - delta_j^prev))) =
    -log1p(-D_n / S_n), D_n = sum_(l != j) s^prev_l (expm1(step_l) - expm1(step_j)) E_ln: accurate
    however small the step.
    """
    s = delta.exp()
    b, m_states = delta.shape
    zeros = delta.new_zeros
    inflow, by_origin, change = zeros(b, m_states), zeros(b, 2, m_states), zeros(b)
    g = zeros(b, m_states, m_states) if gram else None
    grow = torch.expm1(delta - prev.delta) if prev is not None else None
    scales = torch.stack([s, prev.delta.exp() * grow], 1) if prev is not None and grow is not None else s.unsqueeze(1)
    # per-sample arrays are filled in place: small allocations kept between the chunks' large
    # temporaries would fragment the heap
    big_s, rests = delta.new_empty(b, mx.pooled.n_samples), delta.new_empty(b, mx.pooled.n_samples)
    for sh in shifted(mx, frame):
        span = slice(sh.start, sh.start + sh.own.shape[-1])
        weight = mx.omega[span] if mx.omega is not None else None
        sums = torch.bmm(scales, sh.rest)  # R_n, and for a step the first part of D_n
        rest = rests[:, span]
        rest.copy_(sums[:, 0])
        big = torch.addcmul(rest, s.gather(1, sh.pos), sh.own, out=big_s[:, span])
        u = big.reciprocal() if weight is None else weight / big
        inflow += bmv(sh.rest, u)
        sh.segment_sum(u.unsqueeze(1) * torch.stack([sh.own, rest], 1), by_origin)  # own, outflow
        if prev is not None and grow is not None:
            d = sums[:, 1] - grow.gather(1, sh.pos) * prev.rest[:, span]
            change -= (torch.log1p(-d / big) * (1.0 if weight is None else weight)).sum(-1)
        if g is not None:
            g += sh.gram(u / big)
    coll = mx.coll
    if g is not None:
        g = coll.sum(g) * (s.unsqueeze(-1) * s.unsqueeze(-2))
    own, outflow = coll.sum(by_origin).unbind(1)
    point = Point(delta, big_s, rests, own * s, coll.sum(inflow) * s, outflow, g)
    if prev is None:
        return point, change, change
    # each log1p term is first order in the step, at most max|step| times the sample's 1 - V_nj
    scale = (delta - prev.delta).abs().amax(-1) * (outflow + prev.outflow).sum(-1)
    return point, coll.sum(change), scale


def residual(mx: Mixture, point: Point) -> Tensor:
    """max over free states of the relative imbalance |inflow - outflow| / (inflow + outflow), (B,);
    about the error of f_k in nats near the solution; 0 with nothing free."""
    total = (point.inflow + point.outflow).clamp_min(torch.finfo(torch.float64).tiny)
    r = point.grad.abs() / total
    return torch.where(mx.free, r, 0.0).amax(-1)


def _merge(take: Tensor, new: Point, old: Point) -> Point:
    """Per batch item: ``new`` where take, else ``old``."""
    if bool(take.all()):
        return new
    if not bool(take.any()):
        return old
    pick = lambda a, b: torch.where(take.reshape(-1, *([1] * (a.dim() - 1))), a, b)
    gram = pick(new.gram, old.gram) if new.gram is not None and old.gram is not None else new.gram
    return Point(
        pick(new.delta, old.delta),
        pick(new.big_s, old.big_s),
        pick(new.rest, old.rest),
        pick(new.own, old.own),
        pick(new.inflow, old.inflow),
        pick(new.outflow, old.outflow),
        gram,
    )


def _newton_step(mx: Mixture, point: Point, active: Tensor) -> tuple[Tensor, Tensor]:
    """Newton direction over the free states (B, M) (zero where inactive) and the slope of F along it.

    The Hessian is the Laplacian of the Gram matrix, H_kk = sum_(l != k) gram_kl, H_kl = -gram_kl:
    sums of positive terms, without the cancellation of sum_n w_n V_nk (1 - V_nk) when V_nk ~ 1.
    """
    idx = mx.free.nonzero().squeeze(-1)
    assert point.gram is not None, "the Newton step needs the Gram matrix"
    off = point.gram * (1.0 - torch.eye(point.gram.shape[-1], dtype=point.gram.dtype, device=point.gram.device))
    hess = (torch.diag_embed(off.sum(-1)) - off)[:, idx][:, :, idx]
    grad = point.grad[:, idx]
    step = -(torch.linalg.pinv(hess, hermitian=True) @ grad.unsqueeze(-1)).squeeze(-1)
    size = step.abs().amax(-1, keepdim=True)
    step = step * torch.where(size > MAX_STEP, MAX_STEP / size, 1.0)
    step = torch.where(active.unsqueeze(-1), step, 0.0)
    full = torch.zeros_like(point.delta)
    full[:, idx] = step
    return full, (grad * step).sum(-1)


def _line_search(mx: Mixture, frame: Frame, point: Point, step: Tensor, slope: Tensor) -> Point:
    """Armijo backtracking on F per batch item; keeps the smallest step tried if none passes."""
    t = torch.ones_like(slope)
    done = torch.zeros_like(slope, dtype=torch.bool)
    out = point
    for _ in range(40):
        cand, change, scale = evaluate(mx, frame, point.delta + t.unsqueeze(-1) * step, True, point)
        ok = change <= ARMIJO * t * slope + ROUNDING * scale
        out = _merge(ok & ~done, cand, out)
        done |= ok
        if bool(done.all()):
            break
        t = torch.where(done, t, t / 2)
    return _merge(~done, cand, out)


def _recentred(mx: Mixture, frame: Frame, point: Point) -> tuple[Frame, Point]:
    """Move the reference to the current point if it has drifted more than REFRESH nats."""
    if float(point.delta.abs().max()) <= REFRESH:
        return frame, point
    new = make_frame(mx, frame.f_ref + point.delta)
    return new, evaluate(mx, new, torch.zeros_like(point.delta), point.gram is not None)[0]


def solve(mx: Mixture, f0: Tensor, *, tol: float, max_iter: int, sci_iter: int) -> Solution:
    """Minimise F over the free states from f0 (B, K) (fixed states keep their f0)."""
    frame = make_frame(mx, f0[:, mx.mix])
    point = evaluate(mx, frame, torch.zeros_like(frame.f_ref), gram=sci_iter == 0)[0]
    iterations = 0
    free = bool(mx.free.any())
    for _ in range(sci_iter if free else 0):
        active = ~(residual(mx, point) <= tol)
        if not bool(active.any()):
            break
        update = torch.log1p(point.grad * (-mx.log_c).exp()).clamp(-MAX_STEP, MAX_STEP)
        delta = point.delta - torch.where(mx.free & active.unsqueeze(-1), update, 0.0)
        frame, point = _recentred(mx, frame, evaluate(mx, frame, delta, gram=False)[0])
        iterations += 1
    for _ in range(max_iter if free else 0):
        active = ~(residual(mx, point) <= tol)
        if not bool(active.any()):
            break
        if point.gram is None:
            point = evaluate(mx, frame, point.delta, gram=True)[0]
        step, slope = _newton_step(mx, point, active)
        frame, point = _recentred(mx, frame, _line_search(mx, frame, point, step, slope))
        iterations += 1
    if point.gram is None:
        point = evaluate(mx, frame, point.delta, gram=True)[0]
    f = f0.clone()
    f[:, mx.mix] = frame.f_ref + point.delta
    return Solution(f, iterations, residual(mx, point), frame, point)
