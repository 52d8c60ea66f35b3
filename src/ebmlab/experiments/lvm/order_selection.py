"""order-selection: the polynomial order of a Bayesian linear regression chosen by the largest evidence.

Per seed, trials of every (d_y, p*) cell are drawn once; each candidate order is one batched JALA-EM fit over
all cells and trials (B = |d_y| x |p*| x trials fits, a run of the study grid).  Per fit it records the
evidence at theta_K from the estimator population (with SE), from the gradient walkers (coupled, the paper's),
the closed form at theta_K, exact ML-II (L-BFGS-B from theta_0) and OLS + BIC.  The table gives the MAE of the
selected order per cell for each rule.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...lvm import BayesLinearRegression, exact_whitening, polynomial_features
from ...lvm.baselines import ml2, ols_bic
from .common import closed_form, evidence_fields, mae, run_jala, theta0
from .config import OrderSelectionConfig

F64 = torch.float64
RULES = ("estimator", "coupled", "exact_at_theta_k", "ml2", "bic")
# Cuin, Carbone & Akyildiz (2025), Table 1: MAE by p* for d_y = 100, 250, 500.
PAPER = {
    "jala_em": {2: (0.67, 0.45, 0.35), 3: (0.73, 0.41, 0.25), 4: (0.73, 0.49, 0.30), 5: (0.51, 0.40, 0.27),
                6: (0.35, 0.31, 0.18), 7: (0.23, 0.15, 0.09), 8: (0.28, 0.19, 0.13)},
    "ols_bic": {2: (0.64, 0.46, 0.35), 3: (0.90, 0.42, 0.34), 4: (0.80, 0.60, 0.30), 5: (0.64, 0.42, 0.35),
                6: (0.49, 0.32, 0.23), 7: (0.44, 0.28, 0.15), 8: (0.37, 0.30, 0.20)},
}  # fmt: skip
PAPER_D_YS = (100, 250, 500)


def make_data(cfg: OrderSelectionConfig, seed: int) -> list[tuple[Tensor, Tensor]]:
    """Per d_y: inputs t (C, d_y) and observations y (C, d_y), C = |p*| x trials fits in (p*, trial) order."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for d_y in cfg.d_ys:
        ts, ys = [], []
        for p in cfg.true_orders:
            t = (2 * torch.rand(cfg.trials, d_y, generator=g, dtype=F64) - 1) * cfg.x_range
            w = torch.randn(cfg.trials, p + 1, 1, generator=g, dtype=F64) / math.sqrt(cfg.alpha)
            noise = math.sqrt(cfg.sigma2) * torch.randn(cfg.trials, d_y, generator=g, dtype=F64)
            ts.append(t)
            ys.append((polynomial_features(t, p) @ w).squeeze(-1) + noise)
        out.append((torch.cat(ts), torch.cat(ys)))
    return out


def candidate_model(cfg: OrderSelectionConfig, data: list[tuple[Tensor, Tensor]], order: int) -> BayesLinearRegression:
    """One Gaussian model of the candidate ``order`` over every fit (sufficient statistics of each d_y stacked)."""
    parts = [BayesLinearRegression.from_data(polynomial_features(t, order), y) for t, y in data]
    stack = {k: torch.cat([getattr(m, k) for m in parts]) for k in ("gram", "phi_y", "yy", "n")}
    ls, la = theta0(cfg, cfg.sigma2, cfg.alpha)
    return BayesLinearRegression(**stack, log_sigma2=ls, log_alpha=la)


def run_candidate(cfg: OrderSelectionConfig, order: int, seed: int, ckpt: Path, progress: bool | None) -> dict:
    """The batched fit of one candidate order (all cells and trials of one seed) and its baselines."""
    data = make_data(cfg, seed)
    model = candidate_model(cfg, data, order)
    potential = exact_whitening(model)
    fit = run_jala(cfg, potential, closed_form(model), seed * 1000 + order, ckpt, progress, f"order {order}")
    out = evidence_fields(fit, closed_form(model))
    ml2_model = candidate_model(cfg, data, order)
    theta_hat, evidence, gmax = ml2(ml2_model)
    out |= {"ml2_evidence": evidence.tolist(), "ml2_theta": theta_hat.tolist(), "ml2_max_grad": gmax}
    out["bic"] = torch.cat([ols_bic(polynomial_features(t, order), y) for t, y in data]).tolist()
    return out


def select(runs: dict[str, dict[str, Any]], cfg: OrderSelectionConfig, seeds: list[int]) -> dict[str, Tensor]:
    """Selected order per rule and fit: (seeds x B,) tensors, and the true orders in the same order."""
    scores = {
        "estimator": "log_z_est",
        "coupled": "log_z_coupled",
        "exact_at_theta_k": "log_z_exact",
        "ml2": "ml2_evidence",
        "bic": "bic",
    }
    cands = torch.tensor(cfg.candidates)
    out = {}
    for rule, key in scores.items():
        per_seed = []
        for s in seeds:
            table = torch.tensor([runs[f"order{c}"][str(s)][key] for c in cfg.candidates])  # (C, B)
            pick = table.argmin(0) if rule == "bic" else table.argmax(0)
            per_seed.append(cands[pick])
        out[rule] = torch.cat(per_seed)
    truth = torch.tensor(cfg.true_orders).repeat_interleave(cfg.trials).repeat(len(cfg.d_ys))
    out["truth"] = truth.repeat(len(seeds))
    d_y = torch.tensor(cfg.d_ys).repeat_interleave(len(cfg.true_orders) * cfg.trials)
    out["d_y"] = d_y.repeat(len(seeds))
    return out


def table(sel: dict[str, Tensor], cfg: OrderSelectionConfig) -> list[dict[str, Any]]:
    """One row per (p*, d_y): MAE +- SE of every rule and the paper's numbers where it has the cell."""
    rows = []
    for p in cfg.true_orders:
        for d_y in cfg.d_ys:
            mask = (sel["truth"] == p) & (sel["d_y"] == d_y)
            row: dict[str, Any] = {"p_true": p, "d_y": d_y, "trials": int(mask.sum())}
            for rule in RULES:
                row[f"mae_{rule}"], row[f"se_{rule}"] = mae(sel[rule][mask], sel["truth"][mask])
            if d_y in PAPER_D_YS and p in PAPER["jala_em"]:
                i = PAPER_D_YS.index(d_y)
                row["paper_jala_em"], row["paper_ols_bic"] = PAPER["jala_em"][p][i], PAPER["ols_bic"][p][i]
            rows.append(row)
    return rows


def coverage(runs: dict[str, dict[str, Any]], cfg: OrderSelectionConfig, seeds: list[int]) -> dict[str, Any]:
    """Over every fit: the fraction whose estimator-population evidence at theta_K is within 3 SE of the closed
    form, the mean and spread of (estimate - exact) for both estimates, in nats, and the ML-II gradient check."""
    est, se, cpl, ex = ([] for _ in range(4))
    for c in cfg.candidates:
        for s in seeds:
            r = runs[f"order{c}"][str(s)]
            est += r["log_z_est"]
            se += r["log_z_se"]
            cpl += r["log_z_coupled"]
            ex += r["log_z_exact"]
    est, se, cpl, ex = (torch.tensor(v, dtype=F64) for v in (est, se, cpl, ex))
    z = (est - ex) / se
    return {
        "n_fits": len(ex),
        "within_3se": float((z.abs() <= 3).double().mean()),
        "within_2se": float((z.abs() <= 2).double().mean()),
        "error_est_mean": float((est - ex).mean()),
        "error_est_sd": float((est - ex).std()),
        "error_coupled_mean": float((cpl - ex).mean()),
        "error_coupled_sd": float((cpl - ex).std()),
        "ml2_max_grad": max(runs[f"order{c}"][str(s)]["ml2_max_grad"] for c in cfg.candidates for s in seeds),
        "wall_time_s": sum(runs[f"order{c}"][str(s)]["wall_time_s"] for c in cfg.candidates for s in seeds),
    }
