"""Where the weights go: the log-weight increment of one update split into the part the parameter change
causes and the part the kernel causes.

Across an update theta_k -> theta_{k+1} a walker at x moving to y gains the increment
a = U_k(x) - U_{k+1}(y) + (ULA's proposal-density ratio) (:func:`ebmlab.sampling.smc.advance`).  Written as

    a = [U_k(x) - U_{k+1}(x)] + [a - U_k(x) + U_{k+1}(x)],

the first bracket is the parameter change at the walker's old position (the AIS work; the whole increment
for an invariant kernel such as MALA) and the second is the kernel's own part (for ULA the discretisation
term, the log MALA ratio of the move under theta_{k+1}).  Their variances under the current normalised
weights say which of the two degrades the weights: the conditional ESS of an increment is about
exp(-Var_w(a)) for small, roughly Gaussian increments.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..distributed import LOCAL, Collective


def weighted_variance(log_w: Tensor, a: Tensor, coll: Collective = LOCAL) -> float:
    """Var_w(a) = sum_i w_i (a_i - sum_j w_j a_j)^2 with w = softmax(log_w) over all processes, nats^2."""
    w = coll.softmax(log_w.double())
    a = a.double()
    mean = coll.sum(w @ a)
    return float(coll.sum(w @ (a - mean).square()))


def increment_split(log_w: Tensor, param: Tensor, total: Tensor, coll: Collective = LOCAL) -> dict[str, float]:
    """Weighted variances (nats^2) of one update's increment ``total`` (N,), of its parameter-change part
    ``param`` (N,) = U_k(x) - U_{k+1}(x) and of the kernel part total - param, under the weights ``log_w`` (N,)
    the walkers had before the update: keys ``inc_var``, ``inc_var_param``, ``inc_var_kernel``."""
    return {
        "inc_var": weighted_variance(log_w, total, coll),
        "inc_var_param": weighted_variance(log_w, param, coll),
        "inc_var_kernel": weighted_variance(log_w, total - param, coll),
    }


def parameter_work(energy_before: Tensor, energy: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """U_k(x) - U_{k+1}(x) (N,), float64: ``energy_before`` the walkers' cached U_k(x), ``energy`` the new one."""
    with torch.no_grad():
        return energy_before.double() - energy(x).double()


__all__ = ["increment_split", "parameter_work", "weighted_variance"]
