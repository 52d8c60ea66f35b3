"""Pieces shared by the ``ebmlab lvm`` regression experiments: a JALA-EM fit of a batch of Gaussian or
Student-t regressions from theta_0, and the per-fit numbers it reports."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...lvm import FitConfig, LatentFit, Whitened
from ...sampling.kernels import Move
from .config import WalkerSettings


def theta0(cfg: WalkerSettings, sigma2: float, alpha: float) -> tuple[float, float]:
    """theta_0 = (log sigma*^2, log alpha*) + theta0_shift."""
    return math.log(sigma2) + cfg.theta0_shift, math.log(alpha) + cfg.theta0_shift


def run_jala(
    cfg: WalkerSettings,
    potential: Whitened,
    log_z0: Tensor | None,
    seed: int,
    ckpt: Path,
    progress: bool | None,
    desc: str,
) -> LatentFit:
    """JALA-EM with an estimator population, continued from ``ckpt`` when it exists; checkpoints there."""
    opt = torch.optim.Adam(potential.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    fit = LatentFit(
        potential,
        opt,
        n_walkers=cfg.n_walkers,
        generator=torch.Generator().manual_seed(seed),
        config=FitConfig(move=Move("ula", cfg.step_size)),
        log_z0=log_z0,
    )
    if ckpt.exists():
        fit.resume(ckpt)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    fit.run(cfg.iters, checkpoint_path=ckpt, checkpoint_every=cfg.checkpoint_every, progress=progress, desc=desc)
    return fit


def evidence_fields(fit: LatentFit, exact: Tensor | None = None) -> dict[str, Any]:
    """Per fit, at theta_K: theta, the estimator population's and the coupled evidence (nats) with SEs,
    ESS fractions, the closed-form evidence when given, and the wall-clock and CPU time of the whole batch."""
    now = fit.estimates()
    out = {
        "theta": fit.theta().tolist(),
        "log_z_est": now["log_z_est"].tolist(),
        "log_z_se": now["log_z_se"].tolist(),
        "log_z_coupled": now["log_z_coupled"].tolist(),
        "est_ess_frac": now["est_ess_frac"].tolist(),
        "ess_frac": now["ess_frac"].tolist(),
        "wall_time_s": fit.wall_time_s,
        "cpu_time_s": fit.cpu_time_s,
        "status": "ok",
    }
    if exact is not None:
        out["log_z_exact"] = exact.tolist()
    return out


def closed_form(model: nn.Module) -> Tensor:
    """The model's closed-form log evidence at its current theta, detached."""
    with torch.no_grad():
        return model.log_evidence()  # type: ignore[operator]  # a method of the model, not a buffer


def mae(selected: Tensor, truth: Tensor) -> tuple[float, float]:
    """Mean absolute error of selected orders and its standard error over trials (std / sqrt(n))."""
    err = (selected - truth).abs().double()
    n = err.numel()
    return float(err.mean()), float(err.std() / math.sqrt(n)) if n > 1 else math.nan


def pooled(runs: dict[str, dict[str, Any]], key: str, seeds: list[int]) -> Tensor:
    """One variant's per-fit values of ``key`` over ``seeds``, concatenated (float64)."""
    return torch.cat([torch.tensor(runs[str(s)][key], dtype=torch.float64) for s in seeds])
