"""Plots of the Gaussian-mixture study: mode mass, exact vs estimated KL and log Z, ESS/N."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..plotting import COLORS, band, plt, save


def _ok_runs(metrics: dict[str, Any], method: str) -> list[dict[str, Any]]:
    return [r for r in metrics["runs"][method].values() if r.get("status") == "ok"]


def plot_mode_mass(metrics: dict[str, Any], path: Path) -> None:
    target = metrics["config"]["left_mass"]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method in metrics["methods"]:
        runs = _ok_runs(metrics, method)
        if runs:
            t = runs[0]["trajectory"]
            band(
                ax,
                t["step"],
                [r["trajectory"]["mass_left"] for r in runs],
                f"{method} ({len(runs)} seed{'s' * (len(runs) > 1)})",
                COLORS.get(method),
            )
    ax.axhline(target, color="k", ls="--", lw=1, label=f"data ({target:g})")
    ax.set(
        xlabel="iteration",
        ylabel="model mass of the minority mode",
        ylim=(-0.02, 1.02),
        title="Mode mass (mean and min-max over seeds)",
    )
    ax.legend()
    save(fig, path)


def plot_kl_logz(metrics: dict[str, Any], path: Path) -> None:
    """Left: exact vs estimated KL.  Right: log Z estimate minus the exact value, per seed, for the
    estimator population (with its +-3 SE band) and the gradient's own (coupled) walkers."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for method in metrics["methods"]:
        runs = _ok_runs(metrics, method)
        if not runs:
            continue
        c = COLORS.get(method)
        t = runs[0]["trajectory"]["step"]
        band(ax1, t, [r["trajectory"]["kl_exact"] for r in runs], f"{method} exact", c)
        if "kl_est" not in runs[0]["trajectory"]:
            continue
        arr = [r["trajectory"]["kl_est"] for r in runs]
        ax1.plot(t, [sum(col) / len(col) for col in zip(*arr)], ls="--", color=c, label=f"{method} estimated")
        for i, r in enumerate(runs):
            tr = r["trajectory"]
            exact = np.asarray(tr["log_z_exact"])
            coupled = "log_z_est_coupled" in tr
            err = np.asarray(tr["log_z_est"]) - exact
            label = "estimator population" if coupled else "weighted walkers"
            ax2.plot(t, err, color=c, lw=1, label=f"{method} {label}" if i == 0 else None)
            if "log_z_se" in tr:
                se = 3 * np.asarray(tr["log_z_se"])
                ax2.fill_between(t, err - se, err + se, color=c, alpha=0.12, lw=0, label="+-3 SE" if i == 0 else None)
            if coupled:
                ax2.plot(
                    t,
                    np.asarray(tr["log_z_est_coupled"]) - exact,
                    color=c,
                    ls="--",
                    lw=1,
                    label=f"{method} gradient walkers (coupled)" if i == 0 else None,
                )
    ax2.axhline(0, color="k", lw=0.8)
    ax1.set_yscale("log", nonpositive="mask")  # estimated KL can dip below 0 near the optimum: not drawn
    ax1.set(xlabel="iteration", ylabel="KL(data || model) [nats]", title="Exact vs estimated KL")
    ax2.set(xlabel="iteration", ylabel="log Z estimate - exact [nats]", title="Error of the running log Z")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    save(fig, path)


def plot_update_fraction(metrics: dict[str, Any], path: Path) -> bool:
    """Committed fraction lambda of each parameter update (ESS control); False when no run used it."""
    runs = [r for m in metrics["methods"] for r in _ok_runs(metrics, m) if "update_fraction" in r["trajectory"]]
    if not runs:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for seed, r in enumerate(runs):
        lam = r["trajectory"]["update_fraction"]
        ax.plot(range(len(lam)), lam, lw=0.6, alpha=0.8, label=f"run {seed}")
    ax.set(
        xlabel="iteration",
        ylabel="committed fraction of the update",
        ylim=(0, 1.05),
        title=f"ESS control: conditional ESS >= {metrics['config']['cess_target']}",
    )
    ax.legend(fontsize=8)
    save(fig, path)
    return True


def plot_ess(metrics: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method in metrics["methods"]:
        runs = _ok_runs(metrics, method)
        if runs and "kl_est" in runs[0]["trajectory"]:
            t = runs[0]["trajectory"]["step"]
            band(ax, t, [r["trajectory"]["ess_frac"] for r in runs], method, COLORS.get(method))
            for r in runs:
                for s in r["trajectory"]["resample_steps"]:
                    ax.axvline(s, color=COLORS.get(method), alpha=0.3, lw=0.8)
    ax.axhline(metrics["config"]["ess_threshold"], color="k", ls="--", lw=1, label="resampling threshold")
    ax.set(xlabel="iteration", ylabel="ESS / N", ylim=(0, 1.02), title="Effective sample size (vertical: resamplings)")
    ax.legend()
    save(fig, path)


def plot_all(metrics: dict[str, Any], out: Path) -> list[Path]:
    paths = [out / "mode_mass.png", out / "kl_logz.png", out / "ess.png"]
    plot_mode_mass(metrics, paths[0])
    plot_kl_logz(metrics, paths[1])
    plot_ess(metrics, paths[2])
    if plot_update_fraction(metrics, out / "update_fraction.png"):
        paths.append(out / "update_fraction.png")
    return paths
