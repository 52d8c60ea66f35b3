"""Annealed importance sampling along the geometric path U_b = (1 - b) U_0 + b U_1 (Neal 2001).

Forward: x ~ exp(-U_0)/Z_0 exactly, log w = 0; at each temperature the walkers are moved by a kernel
targeting exp(-U_b) and log w collects log f_k - log f_(k-1).  E[w] = Z_1/Z_0 for any schedule, so
log Z_hat = log Z_0 + logmeanexp(log w) (a stochastic lower bound).  Reverse: start from exact draws of
exp(-U_1)/Z_1, run b from 1 to 0, log Z_hat = log Z_0 - logmeanexp(log w) (a stochastic upper bound).

AIS is the weighted-walker engine :func:`ebmlab.sampling.smc.anneal` run over the tempered energies:
'mala' reweights by the AIS increment U_(k-1)(x) - U_k(x) and applies Metropolis-adjusted steps; 'ula'
moves with the previous temperature's cached gradient and adds the exact SMC increment of the ULA kernel
pair (Carbone et al. 2023), so the unadjusted kernel keeps the estimator unbiased.  With
``ess_threshold`` the walkers are resampled (multinomially) when their ESS/N drops below it, which makes
AIS an SMC sampler; the standard error is then the genealogy estimator of
:func:`ebmlab.sampling.walkers.log_z_se`, which also holds without resampling.

With ``betas=Tempering(...)`` the schedule is adapted (temperatures by conditional ESS, MALA step sizes by
acceptance, preconditioners from the walkers' moments) by a pilot run on independent exact draws ``pilot``,
then run with frozen kernels on ``x`` (:func:`ebmlab.sampling.tempering.adapt_schedule`): adapting on the walkers
that carry the estimate would bias it (upwards, by nats, on a 16-D closed-form test).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import check_int
from ..sampling import smc
from ..sampling.langevin import EnergyFn
from ..sampling.resampling import check_threshold, multinomial_below
from ..sampling.tempering import Tempering, adapt_schedule, geometric_path, run_schedule
from ..sampling.walkers import Walkers, ess, log_z_estimate, log_z_se
from .estimate import Estimate
from .validation import check_finite


def ais(
    energy0: EnergyFn,
    energy1: EnergyFn,
    x: Tensor,
    log_z0: float,
    betas: Tensor | int | Tempering,
    *,
    generator: torch.Generator,
    move: smc.Move | None = None,
    reverse: bool = False,
    ess_threshold: float | None = None,
    progress: bool = False,
    pilot: Tensor | None = None,
    **legacy: Any,
) -> Estimate:
    """AIS estimate of log Z_1 = log of the normalizer of exp(-U_1), in nats.

    energy0, energy1: callables (N, *event) -> (N,) energies; log_z0: exact log Z of exp(-U_0).
    x: (N, *event) exact draws from exp(-U_0)/Z_0 (forward) or exp(-U_1)/Z_1 (``reverse=True``).
    betas: increasing schedule from 0 to 1 (K+1 values), an int K for K equal steps, or a
    :class:`~ebmlab.sampling.tempering.Tempering`: a schedule adapted by a pilot run on ``pilot``, exact draws
    of the same distribution as x and independent of them (see the module docstring).
    move: the kernel, its step size h (with a Tempering: the pilot's first) and ``n_steps`` kernel steps per
    temperature, e.g. ``Move("mala", 0.1, n_steps=2)`` (the old keywords ``kernel=`` (default "mala"),
    ``step_size=`` and ``n_moves=`` still work, with a DeprecationWarning); ess_threshold: resample when ESS/N
    falls below it (None = plain AIS, never).
    Returns an Estimate with log_z (), se (genealogy estimator), ess (Kish, of the final weights), and
    diagnostics log_w (N,), acceptance (MALA mean acceptance rate), n_temperatures, n_resamplings, and
    with a Tempering the adapted ``betas`` and ``step_sizes``.
    """
    if move is None and not legacy:
        raise TypeError('ais() needs move=Move(kernel, step_size, n_steps=...), e.g. move=Move("mala", 0.1)')
    move = smc.move_with("ais", move, legacy, smc.Move("mala"))
    if ess_threshold is not None:
        ess_threshold = check_threshold(ess_threshold)
    log_z0 = check_finite(log_z0, "log_z0")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    _check_draws(x, "x")
    start, end = (energy1, energy0) if reverse else (energy0, energy1)
    extra = {}
    if isinstance(betas, Tempering):
        if pilot is None:
            raise ValueError("an adaptive schedule (betas=Tempering(...)) needs pilot=: independent exact draws like x")
        _check_draws(pilot, "pilot", x.shape)
        schedule = adapt_schedule(start, end, pilot, betas, move, generator, ess_threshold=ess_threshold)
        walkers, infos = run_schedule(
            start, end, _start(start, end, x), schedule, move, generator, ess_threshold=ess_threshold, progress=progress
        )
        extra = {"betas": [t.beta for t in schedule], "step_sizes": [t.step_size for t in schedule]}
    else:
        if pilot is not None:
            raise ValueError("pilot draws are only used with an adaptive schedule (betas=Tempering(...))")
        energies = [geometric_path(start, end, float(beta)) for beta in _schedule(betas)[1:]]
        walkers, infos = smc.anneal(
            _start(start, end, x),
            energies,
            move,
            generator,
            resampling=multinomial_below(ess_threshold),
            progress=progress,
        )
    if not bool(torch.isfinite(walkers.log_w).all()):
        raise ValueError("AIS log-weights became non-finite: reduce step_size or use more temperatures")
    log_mean = log_z_estimate(walkers)
    rates = [float(i.accept_rate) for i in infos if i.accept_rate is not None]
    return Estimate(
        log_z=log_z0 - log_mean if reverse else log_z0 + log_mean,
        se=log_z_se(walkers),
        method=f"ais-{move.kernel}" + ("-reverse" if reverse else ""),
        ess=ess(walkers.log_w),
        diagnostics={
            "log_w": walkers.log_w,
            "acceptance": sum(rates) / len(rates) if rates else math.nan,
            "n_temperatures": len(infos),
            "n_resamplings": walkers.n_resamplings,
            **extra,
        },
    )


def _check_draws(x: Tensor, name: str, shape: torch.Size | None = None) -> None:
    """Raise ValueError unless x are exact draws: a float tensor (N, *event) of >= 2 finite rows (of ``shape``
    when given)."""
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] < 2 or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of at least 2 draws, shape (N, *event)")
    if shape is not None and x.shape != shape:
        raise ValueError(f"{name} must have the shape of x, {tuple(shape)}; got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has NaN or inf entries: AIS starts from exact draws of the start distribution")


def _start(start: EnergyFn, end: EnergyFn, x: Tensor) -> Walkers:
    """Equal-weight walkers at x under the path's first energy (both ends evaluated), or a ValueError saying
    AIS cannot start there."""
    try:
        return smc.start(geometric_path(start, end, 0.0), x.detach())
    except ValueError as exc:
        raise ValueError(f"AIS cannot start: {exc} (energy0 and energy1 are both evaluated along the path)") from None


def _schedule(betas: Tensor | int) -> Tensor:
    """Validated float64 schedule 0 = b_0 < ... < b_K = 1."""
    if isinstance(betas, (bool, int)):
        return torch.linspace(0, 1, check_int("betas (number of annealing steps)", betas, 1) + 1, dtype=torch.float64)
    try:
        b = torch.as_tensor(betas, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"betas must be an int number of steps or a 1-D schedule, got {betas!r}") from None
    if b.numel() < 2 or float(b[0]) != 0.0 or float(b[-1]) != 1.0 or not bool((b.diff() > 0).all()):
        raise ValueError("betas must increase strictly from 0 to 1 (or be an int number of steps)")
    return b
