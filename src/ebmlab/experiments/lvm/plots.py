"""Figures of the ``ebmlab lvm`` experiments (PNG, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..plotting import plt, save

RULE_STYLE = {
    "estimator": ("estimator population", "tab:blue"),
    "coupled": ("coupled (paper's estimate)", "tab:orange"),
    "ml2": ("exact ML-II", "tab:green"),
    "bic": ("OLS + BIC", "tab:red"),
}
METHOD_COLORS = {"jala": "tab:blue", "pgd": "tab:red", "soul": "tab:green"}


def order_selection_mae(rows: list[dict[str, Any]], path: Path) -> None:
    """MAE of the selected order against p*, one panel per d_y; the paper's numbers as markers."""
    d_ys = sorted({r["d_y"] for r in rows})
    fig, axes = plt.subplots(1, len(d_ys), figsize=(4.2 * len(d_ys), 3.6), sharey=True, squeeze=False)
    for ax, d_y in zip(axes[0], d_ys):
        sub = [r for r in rows if r["d_y"] == d_y]
        p = np.array([r["p_true"] for r in sub])
        for i, (rule, (label, color)) in enumerate(RULE_STYLE.items()):
            off = (i - 1.5) * 0.08
            mae = [r[f"mae_{rule}"] for r in sub]
            se = [r[f"se_{rule}"] for r in sub]
            ax.errorbar(p + off, mae, yerr=se, label=label, color=color, marker="o", ms=3, lw=1, capsize=2)
        paper = [r for r in sub if "paper_jala_em" in r]
        if paper:
            pp = [r["p_true"] for r in paper]
            ax.scatter(pp, [r["paper_jala_em"] for r in paper], marker="x", color="k", label="paper JALA-EM", zorder=5)
            ax.scatter(pp, [r["paper_ols_bic"] for r in paper], marker="+", color="gray", label="paper OLS+BIC", s=60)
        ax.set(title=f"d_y = {d_y}", xlabel="true order p*")
    axes[0][0].set_ylabel("MAE of the selected order")
    axes[0][0].legend(fontsize=7)
    save(fig, path)


def evidence_errors(errors: dict[str, torch.Tensor], path: Path, title: str) -> None:
    """Histograms of estimate minus closed form (nats) for each estimate."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    lo = min(float(e.quantile(0.005)) for e in errors.values())
    hi = max(float(e.quantile(0.995)) for e in errors.values())
    bins = np.linspace(lo, hi, 60)
    for (label, err), color in zip(errors.items(), ("tab:blue", "tab:orange")):
        ax.hist(
            err.numpy(), bins=bins.tolist(), alpha=0.5, color=color, label=f"{label}: mean {float(err.mean()):+.3f}"
        )
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="log evidence: estimate - closed form at theta_K (nats)", ylabel="fits", title=title)
    ax.legend(fontsize=8)
    save(fig, path)


def error_model_gaps(gaps: dict[str, torch.Tensor], path: Path) -> None:
    """Evidence gap log p(y | Student-t) - log p(y | Gaussian) per generating model."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (label, gap), color in zip(gaps.items(), ("tab:blue", "tab:red")):
        ax.hist(gap.numpy(), bins=40, alpha=0.6, color=color, label=f"data with {label} errors")
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="log evidence, Student-t minus Gaussian model (nats)", ylabel="data sets")
    ax.legend(fontsize=8)
    save(fig, path)


def logistic_theta(runs: dict[str, dict[str, Any]], n_walkers: list[int], path: Path) -> None:
    """theta against CPU time, one panel per N, one thin line per seed, coloured by method."""
    fig, axes = plt.subplots(1, len(n_walkers), figsize=(4.2 * len(n_walkers), 3.6), sharey=True, squeeze=False)
    for ax, n in zip(axes[0], n_walkers):
        for variant, by_seed in runs.items():
            method, vn = variant.rsplit("-N", 1)
            if int(vn) != n:
                continue
            for i, r in enumerate(v for v in by_seed.values() if v.get("status") == "ok"):
                ax.plot(r["cpu_s"], r["theta"], color=METHOD_COLORS[method], lw=0.8, alpha=0.6,
                        label=method if i == 0 else None)  # fmt: skip
        ax.set(title=f"N = {n} walkers", xlabel="CPU time (s), one thread")
    axes[0][0].set_ylabel("theta (prior mean)")
    axes[0][0].legend(fontsize=8)
    save(fig, path)


def logistic_lppd(runs: dict[str, dict[str, Any]], path: Path) -> None:
    """Test log pointwise predictive density per variant, one point per seed."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    names = list(runs)
    for i, variant in enumerate(names):
        vals = [r["lppd"] for r in runs[variant].values() if r.get("status") == "ok"]
        color = METHOD_COLORS[variant.rsplit("-N", 1)[0]]
        ax.scatter(np.full(len(vals), i), vals, color=color, s=12, alpha=0.7)
        ax.errorbar(i + 0.2, np.mean(vals), yerr=np.std(vals), color=color, marker="o", capsize=3)
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    ax.set(ylabel="test LPPD (nats per point)")
    save(fig, path)


def evidence_ratio(by_order: list[dict[str, Any]], path: Path) -> None:
    """Mean of Z_hat / Z at theta_K (+- 2 SE) against the candidate order, for both estimates (1 = unbiased)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    orders = np.array([r["order"] for r in by_order])
    for off, (name, label, color) in zip(
        (-0.08, 0.08),
        (("est", "estimator population", "tab:blue"), ("coupled", "coupled (paper's estimate)", "tab:orange")),
    ):
        mean = [r[f"ratio_{name}_mean"] for r in by_order]
        se = [2 * r[f"ratio_{name}_se"] for r in by_order]
        ax.errorbar(orders + off, mean, yerr=se, label=label, color=color, marker="o", ms=3, capsize=2, lw=1)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xlabel="candidate order", ylabel="mean of Z_hat / Z at theta_K (+- 2 SE)")
    ax.legend(fontsize=8)
    save(fig, path)
