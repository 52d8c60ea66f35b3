"""Annealed importance sampling along the geometric path U_b = (1 - b) U_0 + b U_1 (Neal 2001).

Forward: x ~ exp(-U_0)/Z_0 exactly, log w = 0; at each temperature the walkers are moved by a kernel
targeting exp(-U_b) and log w collects log f_k - log f_(k-1).  E[w] = Z_1/Z_0 for any schedule, so
log Z_hat = log Z_0 + logmeanexp(log w) (a stochastic lower bound).  Reverse: start from exact draws of
exp(-U_1)/Z_1, run b from 1 to 0, log Z_hat = log Z_0 - logmeanexp(log w) (a stochastic upper bound).

Kernels (from :mod:`ebmlab.sampling.langevin`): 'mala' refreshes the cache at the new temperature
(the AIS increment U_(k-1)(x) - U_k(x)) and applies Metropolis-adjusted steps; 'ula' moves with the
previous temperature's cached gradient and adds the exact SMC increment of the ULA kernel pair
(Carbone et al. 2023), so the unadjusted kernel keeps the estimator unbiased.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..sampling.langevin import EnergyFn, check_step_size, init_state, mala, refresh, ula
from .estimate import Estimate, log_mean_relvar
from .validation import check_finite, check_int

KERNELS = ("mala", "ula")


def geometric_path(energy0: EnergyFn, energy1: EnergyFn, beta: float) -> EnergyFn:
    """The tempered energy U_b(x) = (1 - b) U_0(x) + b U_1(x), (N,) nats."""
    return lambda x: (1 - beta) * energy0(x) + beta * energy1(x)


def ais(
    energy0: EnergyFn,
    energy1: EnergyFn,
    x: Tensor,
    log_z0: float,
    betas: Tensor | int,
    *,
    step_size: float,
    generator: torch.Generator,
    kernel: str = "mala",
    n_moves: int = 1,
    reverse: bool = False,
    progress: bool = False,
) -> Estimate:
    """AIS estimate of log Z_1 = log of the normalizer of exp(-U_1), in nats.

    energy0, energy1: callables (N, *event) -> (N,) energies; log_z0: exact log Z of exp(-U_0).
    x: (N, *event) exact draws from exp(-U_0)/Z_0 (forward) or exp(-U_1)/Z_1 (``reverse=True``).
    betas: increasing schedule from 0 to 1 (K+1 values), or an int K for K equal steps.
    step_size: Langevin step h; n_moves: kernel steps per temperature.
    Returns an Estimate with log_z (), se (delta method over walkers), ess (Kish), and diagnostics
    log_w (N,), acceptance (MALA mean acceptance rate), direction.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    check_step_size(step_size)
    check_int(n_moves, "n_moves", 1)
    log_z0 = check_finite(log_z0, "log_z0")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] < 2 or not x.is_floating_point():
        raise ValueError("x must be a float tensor of at least 2 draws, shape (N, *event)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x has NaN or inf entries: AIS starts from exact draws of the start distribution")
    b = _schedule(betas)
    if reverse:
        b = b.flip(0)
    energies = [geometric_path(energy0, energy1, float(beta)) for beta in b]
    state = init_state(energies[0], x.detach())
    if not bool(torch.isfinite(state.energy).all() and torch.isfinite(state.grad).all()):
        raise ValueError(
            "the energies or their gradients are not finite at the starting draws: check energy0 and "
            "energy1 there (both are evaluated along the path)"
        )
    log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    accepted, proposals = 0.0, 0
    for k in tqdm(range(1, len(energies)), desc="ais", disable=None if progress else True):
        if kernel == "mala":
            state, inc = refresh(state, energies[k])
            log_w = log_w + inc
            for _ in range(n_moves):
                state, acc, _ = mala(state, energies[k], step_size, generator)
                accepted, proposals = accepted + float(acc.double().sum()), proposals + acc.numel()
        else:
            for _ in range(n_moves):
                state, inc = ula(state, energies[k], step_size, generator)
                log_w = log_w + inc
    if not bool(torch.isfinite(log_w).all()):
        raise ValueError("AIS log-weights became non-finite: reduce step_size or use more temperatures")
    log_mean, relvar, ess = log_mean_relvar(log_w)
    log_z = log_z0 - log_mean if reverse else log_z0 + log_mean
    return Estimate(
        log_z=log_z,
        se=relvar.sqrt(),
        method=f"ais-{kernel}" + ("-reverse" if reverse else ""),
        ess=ess,
        diagnostics={
            "log_w": log_w,
            "acceptance": accepted / proposals if proposals else math.nan,
            "n_temperatures": len(energies) - 1,
        },
    )


def _schedule(betas: Tensor | int) -> Tensor:
    """Validated float64 schedule 0 = b_0 < ... < b_K = 1."""
    if isinstance(betas, (bool, int)):
        return torch.linspace(0, 1, check_int(betas, "betas (number of annealing steps)", 1) + 1, dtype=torch.float64)
    try:
        b = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"betas must be an int number of steps or a 1-D schedule, got {betas!r}") from None
    if b.numel() < 2 or float(b[0]) != 0.0 or float(b[-1]) != 1.0 or not bool((b.diff() > 0).all()):
        raise ValueError("betas must increase strictly from 0 to 1 (or be an int number of steps)")
    return b
