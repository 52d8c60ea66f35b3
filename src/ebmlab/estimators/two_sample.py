"""Two-sample estimators of log Z: importance sampling, reciprocal IS, bridge sampling, NCE.

Inputs are log densities at two samples: x_1..x_N1 drawn from the target phi/Z and y_1..y_N2 drawn
from a normalised proposal/noise q.  With l = log phi - log q, every bridge function alpha gives
(Meng & Wong 1996)

    Z = E_q[phi alpha] / E_phi/Z[q alpha],   log Z_hat = log mean_j t_j - log mean_i u_i,

with num terms log t_j = l(y_j) + log(q alpha)(y_j) and den terms log u_i = log(q alpha)(x_i).
IS (alpha = 1/q), reciprocal IS (alpha = 1/phi) and the power family (alpha = (phi^a q^(1-a))^-1,
a = 1/2 geometric) are closed forms; the optimal alpha = 1/(s1 phi + s2 Z q) and NCE with only the
normalizer learned are the two-state RLR problem (equivalences E1/E2), solved by :mod:`.solvers`.
The relative variance is relvar(num) + relvar(den) (Fruehwirth-Schnatter 2004, independent draws);
NCE's is the Gutmann-Hyvarinen formula; both become a standard error by
:func:`ebmlab.uncertainty.se_from_relvar`.  Every function accepts a
leading batch shape (..., N).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

from ..distributed import LOCAL
from ..errors import check_int
from ..uncertainty import se_from_relvar
from .diagnostics import pareto_khat
from .estimate import Estimate, EstimatorWarning, log_mean_relvar
from .frames import Mixture
from .pooled import Pooled
from .solvers import solve
from .validation import as_log_density, check_finite, check_positive, check_same_shape, require_overlap

ALPHAS = ("optimal", "geometric", "power")
NO_TARGET_MASS = "the target density is zero at every proposal draw"
SOLVERS = ("newton", "fixed-point")


def log_ratio(log_phi: Tensor, log_q: Tensor, drawn_from: str) -> Tensor:
    """l = log phi - log q (float64, (..., N)) at samples drawn from ``drawn_from`` ('target'/'proposal').

    A sample must have positive density under the distribution it was drawn from.
    """
    lp, lq = _densities(log_phi, log_q, drawn_from)
    return lp - lq


def _densities(log_phi: Tensor, log_q: Tensor, drawn_from: str) -> tuple[Tensor, Tensor]:
    lp = as_log_density(log_phi, f"log_phi ({drawn_from} samples)")
    lq = as_log_density(log_q, f"log_q ({drawn_from} samples)")
    check_same_shape(lp, lq, f"log_phi and log_q of the {drawn_from} samples")
    if lp.dim() < 1 or lp.shape[-1] < 1:
        raise ValueError(f"need at least one {drawn_from} sample: log densities of shape (..., N), N >= 1")
    own = lp if drawn_from == "target" else lq
    if bool((own == -math.inf).any()):
        raise ValueError(
            f"a {drawn_from} sample has zero density (-inf) under the {drawn_from} it was "
            "drawn from: check the samples and the density evaluation"
        )
    return lp, lq


def _require_overlap(l_y: Tensor | None, l_x: Tensor | None) -> None:
    """The target must be positive at some proposal draw (for the num mean), the proposal at some
    target draw (for the den mean): otherwise that mean is 0 and log Z is -inf, +inf or undetermined."""
    if l_y is not None:
        require_overlap(l_y == -math.inf, NO_TARGET_MASS, "reaches the target's support")
    if l_x is not None:
        require_overlap(l_x == math.inf, "the proposal density is zero at every target draw", "covers the target draws")


def bridge_from_terms(
    log_num_terms: Tensor | None, log_den_terms: Tensor | None, method: str, **diagnostics
) -> Estimate:
    """log Z = log mean(num terms) - log mean(den terms), SE from both relative variances.

    A missing side (None) is the constant 1 (IS has no den terms, RIS no num terms).
    """
    ref = log_num_terms if log_num_terms is not None else log_den_terms
    assert ref is not None, "bridge_from_terms needs num or den terms"
    zero = torch.zeros(ref.shape[:-1], dtype=torch.float64, device=ref.device)
    log_num, var_num, ess_num = log_mean_relvar(log_num_terms) if log_num_terms is not None else (zero, zero, None)
    log_den, var_den, ess_den = log_mean_relvar(log_den_terms) if log_den_terms is not None else (zero, zero, None)
    if ess_den is not None:
        diagnostics["ess_target"] = ess_den
    return Estimate(
        log_z=log_num - log_den,
        se=se_from_relvar(var_num + var_den),
        method=method,
        ess=ess_num if ess_num is not None else ess_den,
        diagnostics=diagnostics,
    )


def importance_sampling(log_phi_y: Tensor, log_q_y: Tensor) -> Estimate:
    """IS: log Z = logmeanexp_j l(y_j), y ~ q.  ESS and Pareto k-hat of the weights as diagnostics."""
    l_y = log_ratio(log_phi_y, log_q_y, "proposal")
    _require_overlap(l_y, None)
    return bridge_from_terms(l_y, None, "is", pareto_khat=pareto_khat(l_y))


def reciprocal_is(log_phi_x: Tensor, log_q_x: Tensor) -> Estimate:
    """Reciprocal IS (Gelfand-Dey): log Z = -logmeanexp_i(-l(x_i)), x ~ phi/Z; q must be lighter-tailed."""
    l_x = log_ratio(log_phi_x, log_q_x, "target")
    _require_overlap(None, l_x)
    return bridge_from_terms(None, -l_x, "ris", pareto_khat=pareto_khat(-l_x))


def bridge(
    log_phi_x: Tensor,
    log_q_x: Tensor,
    log_phi_y: Tensor,
    log_q_y: Tensor,
    *,
    alpha: str = "optimal",
    power: float = 0.5,
    nu: float | None = None,
    solver: str = "newton",
    tol: float = 1e-12,
    max_iter: int | None = None,
) -> Estimate:
    """Bridge sampling estimate of log Z from target draws x and proposal draws y.

    alpha: 'optimal' (Meng-Wong, alpha = 1/(s1 phi + s2 Z q), solved iteratively), 'geometric'
        (alpha = (phi q)^-1/2) or 'power' (alpha = (phi^a q^(1-a))^-1 with a = ``power``; a = 0 is IS,
        a = 1 reciprocal IS).
    nu: N2/N1 used in the optimal alpha (s1 = 1/(1+nu), s2 = nu/(1+nu)); default the actual ratio.
    solver: 'newton' (safeguarded Newton, default 100 iterations) or 'fixed-point' (the
        self-consistent iteration, a fixed-point form of the Meng-Wong equation; default 10,000).
    tol: on the residual |sum_n w_n W_n - 1| of the two-state estimating equation (:mod:`.solvers`).
    Shapes: (..., N1) for the x terms, (..., N2) for the y terms, same leading batch shape.
    """
    if alpha not in ALPHAS:
        raise ValueError(f"alpha must be one of {ALPHAS}, got {alpha!r}")
    lp_x, lq_x = _densities(log_phi_x, log_q_x, "target")
    lp_y, lq_y = _densities(log_phi_y, log_q_y, "proposal")
    if lp_x.shape[:-1] != lp_y.shape[:-1]:
        raise ValueError(
            f"target and proposal log densities must share the batch shape, got "
            f"{tuple(lp_x.shape[:-1])} and {tuple(lp_y.shape[:-1])}"
        )
    l_x, l_y = lp_x - lq_x, lp_y - lq_y
    if alpha == "optimal":
        return _optimal_bridge((lp_x, lq_x, lp_y, lq_y), nu, solver, tol, max_iter)
    a = 0.5 if alpha == "geometric" else check_finite(power, "power")
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"power must lie in [0, 1], got {power}")
    _require_overlap(l_y if a < 1 else None, l_x if a > 0 else None)
    return _power_bridge(l_x, l_y, a, "bridge-geometric" if alpha == "geometric" else f"bridge-power({a:g})")


def _power_bridge(l_x: Tensor, l_y: Tensor, a: float, method: str) -> Estimate:
    """alpha = (phi^a q^(1-a))^-1: num terms (1-a) l(y), den terms -a l(x) (closed form)."""
    num = (1 - a) * l_y if a < 1 else torch.zeros_like(l_y)
    den = -a * l_x if a > 0 else torch.zeros_like(l_x)
    return bridge_from_terms(num, den, method)


def _optimal_terms(l_x: Tensor, l_y: Tensor, nu: float, log_z: Tensor) -> tuple[Tensor, Tensor]:
    """Num and den log terms of the optimal bridge at log Z (s1 = 1/(1+nu), s2 = nu/(1+nu))."""
    log_s1, log_s2 = -math.log1p(nu), math.log(nu) - math.log1p(nu)
    c = (log_s2 + log_z).unsqueeze(-1)
    return l_y - torch.logaddexp(log_s1 + l_y, c), -torch.logaddexp(log_s1 + l_x, c)


def _solve_two_state(
    data: tuple[Tensor, Tensor, Tensor, Tensor], nu: float, solver: str, tol: float, max_iter: int | None
) -> tuple[Tensor, int, Tensor, Tensor]:
    """The optimal-bridge / NCE equation as two-state RLR with the proposal's log Z = 0 fixed.

    A chosen nu enters as a weight nu N1 / N2 on each proposal sample (mixture weights N1 and nu N1).
    Returns (log Z (...,), iterations, converged (...,), residual (...,)).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    check_positive(tol, "tol")
    if max_iter is not None:
        check_int("max_iter", max_iter, 0)
    lp_x, lq_x, lp_y, lq_y = data
    _require_overlap(lp_y - lq_y, lp_x - lq_x)
    n1, n2 = lp_x.shape[-1], lp_y.shape[-1]
    batch = lp_x.shape[:-1]
    log_q = torch.stack([torch.cat([lp_x, lp_y], -1), torch.cat([lq_x, lq_y], -1)], -2).reshape(-1, 2, n1 + n2)
    counts = torch.tensor([n1, n2], device=log_q.device)
    w2 = nu * n1 / n2
    omega = None if w2 == 1.0 else torch.cat([log_q.new_ones(n1), log_q.new_full((n2,), w2)])
    log_c = torch.tensor([math.log(n1), math.log(n1) + math.log(nu)], dtype=torch.float64, device=log_q.device)
    free = torch.tensor([True, False], device=log_q.device)
    mx = Mixture(Pooled(log_q, counts, batch, n1 + n2), torch.arange(2, device=log_q.device), log_c, free, omega, LOCAL)
    start = _power_bridge(lp_x - lq_x, lp_y - lq_y, 0.5, "").log_z.reshape(-1)
    f0 = torch.stack([-start, torch.zeros_like(start)], -1)
    newton = solver == "newton"
    limit = max_iter if max_iter is not None else (100 if newton else 10_000)
    sol = solve(mx, f0, tol=tol, max_iter=limit if newton else 0, sci_iter=0 if newton else limit)
    converged = sol.residual <= tol
    if not bool(converged.all()):
        warnings.warn(
            f"two-state solver ({solver}) did not converge for {int((~converged).sum())} problem(s) "
            f"(max residual {float(sol.residual.max()):.2e}); see Estimate.converged",
            EstimatorWarning,
            stacklevel=3,
        )
    return -sol.f[:, 0].reshape(batch), sol.iterations, converged.reshape(batch), sol.residual.reshape(batch)


def _optimal_bridge(
    data: tuple[Tensor, Tensor, Tensor, Tensor], nu: float | None, solver: str, tol: float, max_iter: int | None
) -> Estimate:
    n1, n2 = data[0].shape[-1], data[2].shape[-1]
    nu = n2 / n1 if nu is None else check_positive(nu, "nu")
    log_z, iterations, converged, res = _solve_two_state(data, nu, solver, tol, max_iter)
    num, den = _optimal_terms(data[0] - data[1], data[2] - data[3], nu, log_z)
    est = bridge_from_terms(num, den, "bridge-optimal", nu=nu, max_residual=res)
    return Estimate(
        log_z=log_z,
        se=est.se,
        method=est.method,
        ess=est.ess,
        converged=converged,
        iterations=iterations,
        diagnostics=est.diagnostics,
    )


def nce_log_z(
    log_phi_x: Tensor,
    log_q_x: Tensor,
    log_phi_y: Tensor,
    log_q_y: Tensor,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> Estimate:
    """NCE with only the log-normalizer learned (Gutmann & Hyvarinen): data x ~ phi/Z, noise y ~ q.

    Logistic regression of data vs noise with logit G - log nu = l + c - log nu, nu = N2/N1; the
    intercept c = -log Z maximises J(c) = sum_i log sigmoid(l(x_i) + c - log nu)
    + sum_j log sigmoid(-(l(y_j) + c - log nu)).  Its stationarity equation is the optimal bridge's
    (E1), solved as the two-state RLR problem by Newton.  SE: Var(log Z_hat) =
    (1/N1)[1/E_data[P_nu] - 1 - 1/nu] with P_nu = 1 - h (Gutmann & Hyvarinen 2012, Thm 3, c-only).
    Diagnostics: the maximised objective J/N1, E_data[P_nu], nu, max_residual; ess as the bridge's.
    """
    data = (*_densities(log_phi_x, log_q_x, "target"), *_densities(log_phi_y, log_q_y, "proposal"))
    if data[0].shape[:-1] != data[2].shape[:-1]:
        raise ValueError(
            f"data and noise log densities must share the batch shape, got "
            f"{tuple(data[0].shape[:-1])} and {tuple(data[2].shape[:-1])}"
        )
    n1, n2 = data[0].shape[-1], data[2].shape[-1]
    log_z, iterations, converged, res = _solve_two_state(data, n2 / n1, "newton", tol, max_iter)
    l_x, l_y = data[0] - data[1], data[2] - data[3]
    log_nu = math.log(n2 / n1)
    gx = l_x - log_z.unsqueeze(-1) - log_nu
    gy = l_y - log_z.unsqueeze(-1) - log_nu
    objective = (logsigmoid(gx).sum(-1) + logsigmoid(-gy).sum(-1)) / n1
    e_p_nu = torch.sigmoid(-gx).mean(-1)
    var = (1 / e_p_nu - 1 - n1 / n2).clamp_min(0) / n1
    num, _ = _optimal_terms(l_x, l_y, n2 / n1, log_z)
    return Estimate(
        log_z=log_z,
        se=se_from_relvar(var),
        method="nce",
        ess=log_mean_relvar(num)[2],
        converged=converged,
        iterations=iterations,
        diagnostics={"objective": objective, "e_p_nu": e_p_nu, "nu": n2 / n1, "max_residual": res},
    )
