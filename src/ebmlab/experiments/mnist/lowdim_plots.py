"""Plots of the projected (2-D) imbalanced-digit study: each method's learned density as a heat map
with the training digits and the class regions, and the estimated log Z against the exact one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...io import load_torch, save_figure
from ..plotting import COLORS, band, plt, save
from .plots import CLASS_COLORS, ok_runs

LOG_DENSITY_RANGE = 12.0  # nats below the maximum shown on the heat maps


def plot_density(metrics: dict[str, Any], out: Path) -> None:
    """A grid of panels, one column per method and one row per seed: log density of the final model
    relative to its maximum (clipped at -12 nats) over the region of the data, the training digits as
    dots coloured by digit, and the SVC's class regions outlined in white.  Titles give the exact
    class masses, their TV distance to 4:2:1 and the share of the model's mass inside the view."""
    methods = [m for m in metrics["methods"] if ok_runs(metrics, m)]
    seeds = sorted({s for m in methods for s, _ in ok_runs(metrics, m)}, key=int)
    if not methods:
        return
    regions = load_torch(out / "regions.pt", "class-region file")
    hw, labels = regions["half_width"], regions["labels"].numpy()
    n = labels.shape[0]
    centres = -hw + (np.arange(n) + 0.5) * 2 * hw / n
    inside = np.abs(centres) <= 1.25 * float(regions["data"].abs().max())
    view, cut = centres[inside], np.ix_(inside, inside)
    data, digit = regions["data"].numpy(), regions["data_labels"].numpy()
    fig, axes = plt.subplots(
        len(seeds),
        len(methods),
        figsize=(3.7 * len(methods) + 1.3, 3.7 * len(seeds)),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    for col, method in enumerate(methods):
        runs = dict(ok_runs(metrics, method))
        for row, seed in enumerate(seeds):
            ax = axes[row][col]
            if seed not in runs:
                ax.axis("off")
                continue
            log_p = load_torch(out / "runs" / f"{method}_seed{seed}_density.pt", "density file").double().numpy()
            log_p = log_p - log_p.max()
            in_view = np.exp(log_p[cut]).sum() / np.exp(log_p).sum()
            extent = (view[0], view[-1], view[0], view[-1])
            im = ax.imshow(np.clip(log_p[cut].T, -LOG_DENSITY_RANGE, 0), origin="lower", extent=extent, cmap="viridis")
            for c in range(len(metrics["digits"])):
                ax.contour(view, view, (labels[cut] == c).T, [0.5], colors="w", linewidths=0.7)
            for c, d in enumerate(metrics["digits"]):
                pts = data[digit == c]
                ax.scatter(
                    pts[:, 0],
                    pts[:, 1],
                    s=2,
                    color=CLASS_COLORS[c],
                    edgecolors="k",
                    linewidths=0.15,
                    label=f"digit {d}",
                )
            masses = runs[seed]["final"]["quadrature"]["masses"]
            tv = 0.5 * sum(abs(a - b) for a, b in zip(masses, metrics["target_fractions"]))
            m = "/".join(f"{v:.2f}" for v in masses)
            ax.set_title(
                f"{method}, seed {seed}: {m}, TV {tv:.2f}\n{100 * in_view:.1f}% of the mass in view", fontsize=8
            )
            if row == len(seeds) - 1:
                ax.set_xlabel("coordinate 1")
            if col == 0:
                ax.set_ylabel("coordinate 2")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="log density minus its maximum [nats]")
    axes[0][0].legend(fontsize=7, loc="lower left", markerscale=3)
    fig.suptitle("Final models: exact class masses of digits 2/3/6 (target .57/.29/.14)", fontsize=10)
    save_figure(fig, out / "density.png", dpi=80)
    plt.close(fig)


def plot_log_z(metrics: dict[str, Any], path: Path) -> None:
    """Left: log Z of the Jarzynski model over training (first seed): exact (quadrature), estimated by
    the estimator population and by AIS (+-2 SE bands), and by the gradient's walkers.  Right: the
    error of the estimator population's log Z for every method (mean and min-max band over seeds;
    dashed: the gradient walkers' estimate) on a symmetric-log axis, with the +-0.1 nat target."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.2))
    for method in metrics["methods"]:
        runs = [r for _, r in ok_runs(metrics, method)]
        if not runs or "log_z_est" not in runs[0]["trajectory"]:
            continue
        color, steps = COLORS.get(method), runs[0]["trajectory"]["step"]
        band(ax2, steps, [r["trajectory"]["log_z_error"] for r in runs], f"{method}: estimator population", color)
        if "log_z_est_coupled" in runs[0]["trajectory"]:
            coupled = [np.subtract(r["trajectory"]["log_z_est_coupled"], r["trajectory"]["log_z_exact"]) for r in runs]
            ax2.plot(steps, np.mean(coupled, 0), color=color, ls="--", lw=1, label=f"{method}: gradient walkers")
    jarzynski = ok_runs(metrics, "jarzynski") if "jarzynski" in metrics["methods"] else []
    if jarzynski:
        seed, run = jarzynski[0]
        traj, color = run["trajectory"], COLORS["jarzynski"]
        steps = np.asarray(traj["step"])
        ax1.plot(steps, traj["log_z_exact"], color="k", lw=1.2, label="exact (quadrature)")
        for key, se_key, ls, label in (
            ("log_z_est", "log_z_se", "-", "estimator population"),
            ("ais_log_z", "ais_log_z_se", ":", "AIS from the initial model"),
        ):
            est, se = np.asarray(traj[key], float), np.asarray(traj[se_key], float)
            ax1.plot(steps, est, color=color, ls=ls, lw=1.2, label=f"{label} (+-2 SE)")
            ax1.fill_between(steps, est - 2 * se, est + 2 * se, color=color, alpha=0.2, lw=0)
        ax1.plot(steps, traj["log_z_est_coupled"], color="tab:gray", ls="--", lw=1, label="gradient walkers")
        ax1.set_title(f"log Z of the Jarzynski model (seed {seed})")
    ax1.set(xlabel="training iteration", ylabel="log Z [nats]")
    ax2.axhspan(-0.1, 0.1, color="0.85", lw=0, label="+-0.1 nat")
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_yscale("symlog", linthresh=0.1)
    ax2.set(xlabel="training iteration", ylabel="estimated minus exact log Z [nats]", title="Error of the estimates")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    save(fig, path)
