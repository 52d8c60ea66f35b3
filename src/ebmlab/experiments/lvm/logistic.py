"""logistic: Bayesian logistic regression on scikit-learn's breast-cancer data, prior N(theta 1, v I) with theta
learned by JALA-EM against PGD and SOUL, one fit per (method, N, seed).

Data: ``load_breast_cancer`` (569 x 30), a stratified 80/20 split seeded by the run's seed, features
standardised with the training split's moments, plus an intercept column (d = 31).  Every method starts from
the same place: theta_0, walkers from the Laplace approximation of the posterior at theta_0 (whitened
coordinates), the same Langevin step and the same optimiser (Adam).  Reported: theta against iterations and
CPU time (the wall-clock time on an unshared core; the process's CPU time is steadier on a shared machine),
and the test log pointwise predictive density (nats per test point) at the end, weighted for JALA-EM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...lvm import FitConfig, LatentFit, laplace_whitening
from ...lvm.logistic import BayesLogistic, log_predictive
from ...sampling.kernels import Move
from .config import LogisticConfig

F64 = torch.float64


def load_split(cfg: LogisticConfig, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train features (n, 31), train labels (n,), test features, test labels), standardised, with intercept."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, t = load_breast_cancer(return_X_y=True)
    x_tr, x_te, t_tr, t_te = train_test_split(x, t, test_size=cfg.test_fraction, stratify=t, random_state=seed)
    x_tr, x_te = torch.as_tensor(x_tr, dtype=F64), torch.as_tensor(x_te, dtype=F64)
    mean, std = x_tr.mean(0), x_tr.std(0)

    def prep(v: Tensor) -> Tensor:
        return torch.cat([torch.ones(v.shape[0], 1, dtype=F64), (v - mean) / std], 1)

    return prep(x_tr), torch.as_tensor(t_tr), prep(x_te), torch.as_tensor(t_te)


def fit_config(cfg: LogisticConfig, method: str) -> FitConfig:
    """The fit settings of ``method``: one ULA step of ``cfg.step_size`` per update; resampling for jala."""
    move = Move("ula", cfg.step_size)
    if method == "jala":
        thr = cfg.ess_threshold
        return FitConfig("jala", move, ess_threshold=thr, estimator=True, estimator_threshold=thr)
    return FitConfig(method, move, chain_steps=cfg.soul_chain if method == "soul" else 1, estimator=False)


def run_one(
    cfg: LogisticConfig, method: str, n_walkers: int, seed: int, ckpt: Path, progress: bool | None
) -> dict[str, Any]:
    """One fit; continued from ``ckpt`` when it exists."""
    x_tr, t_tr, x_te, t_te = load_split(cfg, seed)
    model = BayesLogistic(x_tr[None], t_tr[None], cfg.prior_var, cfg.theta0)
    potential = laplace_whitening(model, torch.zeros(1, x_tr.shape[1], dtype=F64))
    fit = LatentFit(
        potential,
        torch.optim.Adam(potential.parameters(), lr=cfg.lr),
        n_walkers=n_walkers,
        generator=torch.Generator().manual_seed(seed),
        config=fit_config(cfg, method),
    )
    if ckpt.exists():
        fit.resume(ckpt)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    desc = f"{method} N={n_walkers} seed {seed}"
    fit.run(cfg.iters, checkpoint_path=ckpt, checkpoint_every=cfg.checkpoint_every, progress=progress, desc=desc)
    tr = fit.trajectory()
    with torch.no_grad():
        x = potential.to_x(fit.latents())
        lppd = log_predictive(x, fit.weights(), x_te[None], t_te[None])
    out: dict[str, Any] = {
        "status": "ok",
        "theta": tr["theta"][:, 0, 0].tolist(),
        "wall_s": [0.0, *tr["wall_s"].tolist()],
        "cpu_s": [0.0, *tr["cpu_s"].tolist()],
        "theta_final": float(tr["theta"][-1, 0, 0]),
        "lppd": float(lppd[0]),
        "wall_time_s": fit.wall_time_s,
        "cpu_time_s": fit.cpu_time_s,
    }
    if method == "jala":
        out |= {k: float(v[-1, 0]) for k, v in tr.items() if k.startswith(("log_z", "ess", "est_ess"))}
        walk, est = fit.walkers.n_resamplings, fit.estimator.n_resamplings if fit.estimator is not None else None
        assert isinstance(walk, Tensor) and isinstance(est, Tensor)  # grouped walkers count per group
        out["n_resamplings"], out["est_n_resamplings"] = int(walk[0]), int(est[0])
    return out


def summary(runs: dict[str, dict[str, Any]], tol: float) -> list[dict[str, Any]]:
    """Per variant, over seeds: mean and SD of the final theta, the test LPPD and the CPU time; the mean
    |theta_K - consensus| and the median CPU time until |theta - consensus| <= tol, where the consensus of a
    seed is the mean final theta of every variant on that seed's split (the methods share the target)."""
    finals: dict[str, list[float]] = {}
    for by_seed in runs.values():
        for seed, r in by_seed.items():
            if r.get("status") == "ok":
                finals.setdefault(seed, []).append(r["theta_final"])
    consensus = {seed: sum(v) / len(v) for seed, v in finals.items()}
    rows = []
    for variant, by_seed in runs.items():
        ok = {seed: r for seed, r in by_seed.items() if r.get("status") == "ok"}
        row: dict[str, Any] = {"variant": variant, "n_seeds": len(ok)}
        for key in ("theta_final", "lppd", "cpu_time_s", "wall_time_s", "log_z_est", "log_z_coupled", "log_z_se"):
            vals = torch.tensor([r[key] for r in ok.values() if key in r], dtype=F64)
            if len(vals):
                row[f"{key}_mean"] = float(vals.mean())
                row[f"{key}_sd"] = float(vals.std()) if len(vals) > 1 else 0.0
        dev = torch.tensor([abs(r["theta_final"] - consensus[s]) for s, r in ok.items()], dtype=F64)
        row["abs_dev_consensus_mean"] = float(dev.mean())
        row["cpu_s_to_tol_median"] = float(
            torch.tensor([_time_to(r, consensus[s], tol) for s, r in ok.items()]).median()
        )
        rows.append(row)
    return rows


def _time_to(run: dict[str, Any], target: float, tol: float) -> float:
    """CPU seconds until theta first comes within ``tol`` of ``target`` (inf if never)."""
    for theta, t in zip(run["theta"], run["cpu_s"]):
        if abs(theta - target) <= tol:
            return t
    return float("inf")
