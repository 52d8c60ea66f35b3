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
from .common import closed_form, evidence_fields, mae, pooled, run_jala, theta0
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
            diff = (sel["estimator"][mask] - sel["truth"][mask]).abs() - (
                sel["coupled"][mask] - sel["truth"][mask]
            ).abs()
            row["mae_diff_est_coupled"] = float(diff.double().mean())
            row["se_diff_est_coupled"] = (
                float(diff.double().std() / math.sqrt(diff.numel())) if diff.numel() > 1 else 0.0
            )
            if d_y in PAPER_D_YS and p in PAPER["jala_em"]:
                i = PAPER_D_YS.index(d_y)
                row["paper_jala_em"], row["paper_ols_bic"] = PAPER["jala_em"][p][i], PAPER["ols_bic"][p][i]
            rows.append(row)
    return rows


def coverage(runs: dict[str, dict[str, Any]], cfg: OrderSelectionConfig, seeds: list[int]) -> dict[str, Any]:
    """Evidence at theta_K against the closed form, over every fit and per candidate order: the fraction of
    estimator-population estimates within 3 (and 2) SE; the mean error in log space (nats) of both estimates;
    and the mean ratio Z_hat / Z with its standard error, which an unbiased estimator of Z keeps at 1 (the
    log-space error of any unbiased Z_hat is negative, about -Var/2, by Jensen's inequality)."""
    by_order: list[Any] = []
    total: dict[str, list[Any]] = {k: [] for k in ("log_z_est", "log_z_se", "log_z_coupled", "log_z_exact")}
    for c in cfg.candidates:
        v = {k: pooled(runs[f"order{c}"], k, seeds) for k in total}
        for k in total:
            total[k].append(v[k])
        by_order.append({"order": c, **_errors(v)})
    out = _errors({k: torch.cat(t) for k, t in total.items()})
    out["by_order"] = by_order
    out["ml2_max_grad"] = max(runs[f"order{c}"][str(s)]["ml2_max_grad"] for c in cfg.candidates for s in seeds)
    for key in ("wall_time_s", "cpu_time_s"):
        out[key] = sum(runs[f"order{c}"][str(s)][key] for c in cfg.candidates for s in seeds)
    return out


def _errors(v: dict[str, Tensor]) -> dict[str, Any]:
    est, se, cpl, ex = v["log_z_est"], v["log_z_se"], v["log_z_coupled"], v["log_z_exact"]
    z = (est - ex) / se
    n = math.sqrt(len(ex))
    out: dict[str, Any] = {"n_fits": len(ex), "within_3se": float((z.abs() <= 3).double().mean())}
    out["within_2se"] = float((z.abs() <= 2).double().mean())
    for name, e in (("est", est), ("coupled", cpl)):
        ratio = torch.exp(e - ex)
        out[f"error_{name}_mean"] = float((e - ex).mean())
        out[f"ratio_{name}_mean"], out[f"ratio_{name}_se"] = float(ratio.mean()), float(ratio.std() / n)
    return out
