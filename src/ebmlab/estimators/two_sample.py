"""Two-sample estimators of log Z: importance sampling, reciprocal IS, bridge sampling, NCE.

Inputs are log densities at two samples: x_1..x_N1 drawn from the target phi/Z and y_1..y_N2 drawn
from a normalised proposal/noise q.  With l = log phi - log q, every bridge function alpha gives
(Meng & Wong 1996)

    Z = E_q[phi alpha] / E_phi/Z[q alpha],   log Z_hat = log mean_j t_j - log mean_i u_i,

with num terms log t_j = l(y_j) + log(q alpha)(y_j) and den terms log u_i = log(q alpha)(x_i).
IS (alpha = 1/q), reciprocal IS (alpha = 1/phi), the power family (alpha = (phi^a q^(1-a))^-1,
a = 1/2 geometric) and the optimal alpha = 1/(s1 phi + s2 Z q) all go through that one core; the
standard error is the delta-method sqrt(relvar(num) + relvar(den)) (Fruehwirth-Schnatter 2004,
independent draws).  NCE with only the normalizer learned solves the logistic-regression
stationarity equation in c = -log Z; it equals the optimal bridge (equivalence E1).
Every function accepts a leading batch shape (..., N).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import logsigmoid

from .diagnostics import pareto_khat
from .estimate import Estimate, as_log_density, check_same_shape, log_mean_relvar
from .solvers import solve_decreasing

ALPHAS = ("optimal", "geometric", "power")


def log_ratio(log_phi: Tensor, log_q: Tensor, drawn_from: str) -> Tensor:
    """l = log phi - log q (float64, (..., N)) at samples drawn from ``drawn_from`` ('target'/'proposal').

    A sample must have positive density under the distribution it was drawn from.
    """
    lp = as_log_density(log_phi, f"log_phi ({drawn_from} samples)")
    lq = as_log_density(log_q, f"log_q ({drawn_from} samples)")
    check_same_shape(lp, lq, f"log_phi and log_q of the {drawn_from} samples")
    own = lp if drawn_from == "target" else lq
    if bool((own == -math.inf).any()):
        raise ValueError(
            f"a {drawn_from} sample has zero density (-inf) under the {drawn_from} it was "
            "drawn from: check the samples and the density evaluation"
        )
    if lp.shape[-1] < 1:
        raise ValueError(f"need at least one {drawn_from} sample")
    return lp - lq


def bridge_from_terms(
    log_num_terms: Tensor | None, log_den_terms: Tensor | None, method: str, **diagnostics
) -> Estimate:
    """log Z = log mean(num terms) - log mean(den terms), SE from both relative variances.

    A missing side (None) is the constant 1 (IS has no den terms, RIS no num terms).
    """
    ref = log_num_terms if log_num_terms is not None else log_den_terms
    zero = torch.zeros(ref.shape[:-1], dtype=torch.float64, device=ref.device)
    log_num, var_num, ess_num = log_mean_relvar(log_num_terms) if log_num_terms is not None else (zero, zero, None)
    log_den, var_den, ess_den = log_mean_relvar(log_den_terms) if log_den_terms is not None else (zero, zero, None)
    if ess_den is not None:
        diagnostics["ess_target"] = ess_den
    return Estimate(
        log_z=log_num - log_den,
        se=(var_num + var_den).sqrt(),
        method=method,
        ess=ess_num if ess_num is not None else ess_den,
        diagnostics=diagnostics,
    )


def importance_sampling(log_phi_y: Tensor, log_q_y: Tensor) -> Estimate:
    """IS: log Z = logmeanexp_j l(y_j), y ~ q.  ESS and Pareto k-hat of the weights as diagnostics."""
    l_y = log_ratio(log_phi_y, log_q_y, "proposal")
    return bridge_from_terms(l_y, None, "is", pareto_khat=pareto_khat(l_y))


def reciprocal_is(log_phi_x: Tensor, log_q_x: Tensor) -> Estimate:
    """Reciprocal IS (Gelfand-Dey): log Z = -logmeanexp_i(-l(x_i)), x ~ phi/Z; q must be lighter-tailed."""
    l_x = log_ratio(log_phi_x, log_q_x, "target")
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
    tol: float = 1e-13,
    max_iter: int | None = None,
) -> Estimate:
    """Bridge sampling estimate of log Z from target draws x and proposal draws y.

    alpha: 'optimal' (Meng-Wong, alpha = 1/(s1 phi + s2 Z q), solved iteratively), 'geometric'
        (alpha = (phi q)^-1/2) or 'power' (alpha = (phi^a q^(1-a))^-1 with a = ``power``; a = 0 is IS,
        a = 1 reciprocal IS).
    nu: N2/N1 used in the optimal alpha (s1 = 1/(1+nu), s2 = nu/(1+nu)); default the actual ratio.
    solver: 'newton' (safeguarded Newton on the Meng-Wong equation in log Z) or 'fixed-point' (the
        Meng-Wong iteration log Z <- log num(log Z) - log den(log Z)).
    Shapes: (..., N1) for the x terms, (..., N2) for the y terms, same leading batch shape.
    """
    if alpha not in ALPHAS:
        raise ValueError(f"alpha must be one of {ALPHAS}, got {alpha!r}")
    l_x = log_ratio(log_phi_x, log_q_x, "target")
    l_y = log_ratio(log_phi_y, log_q_y, "proposal")
    if l_x.shape[:-1] != l_y.shape[:-1]:
        raise ValueError(
            f"target and proposal log densities must share the batch shape, got "
            f"{tuple(l_x.shape[:-1])} and {tuple(l_y.shape[:-1])}"
        )
    if alpha == "geometric":
        return _power_bridge(l_x, l_y, 0.5, "bridge-geometric")
    if alpha == "power":
        if not 0.0 <= power <= 1.0:
            raise ValueError(f"power must lie in [0, 1], got {power}")
        return _power_bridge(l_x, l_y, float(power), f"bridge-power({power:g})")
    return _optimal_bridge(l_x, l_y, nu, solver, tol, max_iter)


def _power_bridge(l_x: Tensor, l_y: Tensor, a: float, method: str) -> Estimate:
    """alpha = (phi^a q^(1-a))^-1: num terms (1-a) l(y), den terms -a l(x) (closed form)."""
    num = (1 - a) * l_y if a < 1 else torch.zeros_like(l_y)
    den = -a * l_x if a > 0 else torch.zeros_like(l_x)
    return bridge_from_terms(num, den, method)


def _optimal_terms(l_x: Tensor, l_y: Tensor, log_s1: float, log_s2: float, log_z: Tensor) -> tuple[Tensor, Tensor]:
    """Num and den log terms of the optimal bridge at the current log Z."""
    c = (log_s2 + log_z).unsqueeze(-1)
    num = l_y - torch.logaddexp(log_s1 + l_y, c)
    den = -torch.logaddexp(log_s1 + l_x, c)
    return num, den


def _optimal_bridge(
    l_x: Tensor, l_y: Tensor, nu: float | None, solver: str, tol: float, max_iter: int | None
) -> Estimate:
    n1, n2 = l_x.shape[-1], l_y.shape[-1]
    nu = n2 / n1 if nu is None else float(nu)
    if not nu > 0 or not math.isfinite(nu):
        raise ValueError(f"nu must be positive and finite, got {nu}")
    log_s1, log_s2 = -math.log1p(nu), math.log(nu) - math.log1p(nu)
    start = _power_bridge(l_x, l_y, 0.5, "").log_z

    def equation(log_z: Tensor) -> tuple[Tensor, Tensor]:
        """Meng-Wong equation log num - log den - log Z (decreasing) and its derivative."""
        num, den = _optimal_terms(l_x, l_y, log_s1, log_s2, log_z)
        sig_y = torch.sigmoid(log_s2 + log_z.unsqueeze(-1) - log_s1 - l_y)
        sig_x = torch.sigmoid(log_s2 + log_z.unsqueeze(-1) - log_s1 - l_x)
        value = torch.logsumexp(num, -1) - math.log(n2) - torch.logsumexp(den, -1) + math.log(n1) - log_z
        deriv = (torch.softmax(den, -1) * sig_x).sum(-1) - (torch.softmax(num, -1) * sig_y).sum(-1) - 1
        return value, deriv

    if solver == "newton":
        log_z, iterations, converged = solve_decreasing(equation, start, tol=tol, max_iter=max_iter or 100)
    elif solver == "fixed-point":
        log_z, iterations, converged = _fixed_point(equation, start, tol, max_iter or 10_000)
    else:
        raise ValueError(f"solver must be 'newton' or 'fixed-point', got {solver!r}")
    num, den = _optimal_terms(l_x, l_y, log_s1, log_s2, log_z)
    est = bridge_from_terms(num, den, "bridge-optimal", nu=nu)
    return Estimate(
        log_z=est.log_z,
        se=est.se,
        method=est.method,
        ess=est.ess,
        converged=converged,
        iterations=iterations,
        diagnostics=est.diagnostics,
    )


def _fixed_point(equation, start: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int, Tensor]:
    """Meng-Wong iteration log Z <- log Z + equation(log Z) (= log num - log den)."""
    log_z = start.clone()
    done = torch.zeros_like(log_z, dtype=torch.bool)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        new = log_z + equation(log_z)[0]
        done = done | ((new - log_z).abs() <= tol * (1 + log_z.abs()))
        log_z = new
        if bool(done.all()):
            break
    return log_z, iterations, done


def nce_log_z(
    log_phi_x: Tensor,
    log_q_x: Tensor,
    log_phi_y: Tensor,
    log_q_y: Tensor,
    *,
    tol: float = 1e-13,
    max_iter: int = 100,
) -> Estimate:
    """NCE with only the log-normalizer learned (Gutmann & Hyvarinen): data x ~ phi/Z, noise y ~ q.

    Logistic regression of data vs noise with logit G - log nu = l + c - log nu, nu = N2/N1; the
    intercept c = -log Z maximises J(c) = sum_i log sigmoid(l(x_i) + c - log nu)
    + sum_j log sigmoid(-(l(y_j) + c - log nu)).  Solved by safeguarded Newton on dJ/dc = 0.
    SE: Var(log Z_hat) = (1/N1)[1/E_data[P_nu] - 1 - 1/nu] with P_nu = 1 - h (Gutmann & Hyvarinen
    2012, Thm 3, c-only).  Diagnostics: the maximised objective J/N1 and E_data[P_nu].
    """
    l_x = log_ratio(log_phi_x, log_q_x, "target")
    l_y = log_ratio(log_phi_y, log_q_y, "proposal")
    n1, n2 = l_x.shape[-1], l_y.shape[-1]
    log_nu = math.log(n2 / n1)
    start = _power_bridge(l_x, l_y, 0.5, "").log_z

    def score(log_z: Tensor) -> tuple[Tensor, Tensor]:
        """-(dJ/dc)/N1 as a function of log Z = -c (decreasing) and its derivative."""
        gx = l_x - log_z.unsqueeze(-1) - log_nu
        gy = l_y - log_z.unsqueeze(-1) - log_nu
        hx, hy = torch.sigmoid(gx), torch.sigmoid(gy)
        value = -(torch.sigmoid(-gx).sum(-1) - hy.sum(-1)) / n1
        deriv = -((hx * (1 - hx)).sum(-1) + (hy * (1 - hy)).sum(-1)) / n1
        return value, deriv

    log_z, iterations, converged = solve_decreasing(score, start, tol=tol, max_iter=max_iter)
    gx = l_x - log_z.unsqueeze(-1) - log_nu
    gy = l_y - log_z.unsqueeze(-1) - log_nu
    objective = (logsigmoid(gx).sum(-1) + logsigmoid(-gy).sum(-1)) / n1
    e_p_nu = torch.sigmoid(-gx).mean(-1)
    var = (1 / e_p_nu - 1 - n1 / n2).clamp_min(0) / n1
    return Estimate(
        log_z=log_z,
        se=var.sqrt(),
        method="nce",
        converged=converged,
        iterations=iterations,
        diagnostics={"objective": objective, "e_p_nu": e_p_nu, "nu": n2 / n1},
    )
