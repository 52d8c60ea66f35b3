"""Plots of the Gaussian-mixture study: mode mass, exact vs estimated KL and log Z, ESS/N."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plotting import COLORS, band, plt, save


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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for method in metrics["methods"]:
        runs = _ok_runs(metrics, method)
        if not runs:
            continue
        c = COLORS.get(method)
        t = runs[0]["trajectory"]["step"]
        band(ax1, t, [r["trajectory"]["kl_exact"] for r in runs], f"{method} exact", c)
        if "kl_est" in runs[0]["trajectory"]:
            arr = [r["trajectory"]["kl_est"] for r in runs]
            ax1.plot(t, [sum(col) / len(col) for col in zip(*arr)], ls="--", color=c, label=f"{method} estimated")
            band(ax2, t, [r["trajectory"]["log_z_exact"] for r in runs], f"{method} exact", "k")
            band(ax2, t, [r["trajectory"]["log_z_est"] for r in runs], f"{method} estimated", c)
    ax1.set_yscale("log", nonpositive="mask")  # estimated KL can dip below 0 near the optimum: not drawn
    ax1.set(xlabel="iteration", ylabel="KL(data || model) [nats]", title="Exact vs estimated KL")
    ax2.set(xlabel="iteration", ylabel="log Z [nats]", title="Exact vs estimated log Z (weighted walkers)")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    save(fig, path)


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
    return paths
