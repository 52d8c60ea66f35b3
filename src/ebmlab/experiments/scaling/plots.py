"""The sweep's figures: model TV against dimension, and what the weights did against dimension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plotting import COLORS, plt, save

PCA_MARK, PIXEL_MARK = "o", "*"
PIXEL_X = 96  # where the 64-D pixel point sits on the dimension axis, apart from PCA-64


def _x(point: dict[str, Any]) -> float:
    return PIXEL_X if point["space"] == "digits8x8" else point["dim"]


def _axis(ax, sweep: dict[str, Any]) -> None:
    """log2 dimension axis with the PCA dimensions and, if present, the 8x8-pixel point labelled apart."""
    ax.set_xscale("log", base=2)
    ticks = sorted({_x(p) for p in sweep["points"].values()})
    ax.set_xticks(ticks, ["8x8 px" if t == PIXEL_X else str(t) for t in ticks])
    ax.set_xlabel("dimension (PCA of MNIST; 8x8 px = 64 real pixels)")


def _series(sweep: dict[str, Any], method: str, space: str, key: str) -> tuple[list[float], list[float]]:
    """(dims, per-point means of ``key``) over the points of ``space`` where the method has a value."""
    xs: list[float] = []
    ys: list[float] = []
    for p in sweep["points"].values():
        s = p["summary"].get(method, {})
        if p["space"] == space and s.get(key) is not None:
            xs.append(_x(p))
            ys.append(s[key])
    return xs, ys


def plot_tv_vs_dim(sweep: dict[str, Any], path: Path) -> None:
    """Model class-mass TV to 4:2:1 per method against dimension: the mean over the seeds whose masses passed
    the three-way check (line), every seed (filled: checked, hollow: failed the check), 8x8 pixels as stars."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in sweep["methods"]:
        color = COLORS.get(method)
        xs, ys = _series(sweep, method, "pca", "model_tv_mean")
        ax.plot(xs, ys, "-", color=color, lw=1.8, label=f"{method} (PCA, mean of checked seeds)")
        for p in sweep["points"].values():
            mark = PIXEL_MARK if p["space"] == "digits8x8" else PCA_MARK
            for r in p["runs"].get(method, {}).values():
                if r.get("status") != "ok":
                    continue
                face = color if r["tv_reliable"] else "none"
                ax.scatter(_x(p), r["model_tv"], marker=mark, s=60 if mark == PIXEL_MARK else 22,
                           facecolors=face, edgecolors=color, alpha=0.8, zorder=3)  # fmt: skip
        xs, ys = _series(sweep, method, "digits8x8", "model_tv_mean")
        if ys:
            ax.scatter(xs, ys, marker=PIXEL_MARK, s=180, color=color, edgecolors="k", zorder=4,
                       label=f"{method} (8x8 pixels, mean)")  # fmt: skip
    _axis(ax, sweep)
    ax.axhline(0.1, color="grey", lw=0.8, ls=":")
    ref = sorted((p["dim"], p["reference_tv"]) for p in sweep["points"].values() if p["space"] == "pca")
    if ref:
        ax.plot(*zip(*ref), color="k", lw=1, ls="--", label="training digits' own SVC labels (floor)")
    ax.set_ylabel("model class-mass TV to 4:2:1")
    ax.set_ylim(bottom=0)
    ax.set_title("Model class masses vs dimension (hollow: masses failed the cross-check)")
    ax.legend(fontsize=7, loc="upper left")
    save(fig, path)


def plot_weights_vs_dim(sweep: dict[str, Any], path: Path) -> None:
    """Three panels against dimension: resamplings per 100 updates (gradient walkers solid, estimator
    population dashed), mean ESS/N, and for Jarzynski the per-update increment variance split into its
    parameter-change and kernel parts."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for method in sweep["methods"]:
        color = COLORS.get(method)
        for space, mark in (("pca", PCA_MARK), ("digits8x8", PIXEL_MARK)):
            ls = "-" if space == "pca" else "none"
            lab = "" if space == "pca" else " (8x8)"
            if method == "jarzynski":
                xs, ys = _series(sweep, method, space, "resamplings_per_100_mean")
                axes[0].plot(xs, ys, marker=mark, ls=ls, color=color, label=f"{method} walkers{lab}")
                xs, ys = _series(sweep, method, space, "mean_ess_frac_mean")
                axes[1].plot(xs, ys, marker=mark, ls=ls, color=color, label=f"{method} walkers{lab}")
            xs, ys = _series(sweep, method, space, "estimator_resamplings_per_100_mean")
            axes[0].plot(xs, ys, marker=mark, ls="--" if space == "pca" else "none", color=color, mfc="none",
                         label=f"{method} estimator pop.{lab}")  # fmt: skip
            xs, ys = _series(sweep, method, space, "mean_est_ess_frac_mean")
            axes[1].plot(xs, ys, marker=mark, ls="--" if space == "pca" else "none", color=color, mfc="none",
                         label=f"{method} estimator pop.{lab}")  # fmt: skip
    for key, style, label in (("inc_var_param", "-", "parameter change"), ("inc_var_kernel", "--", "kernel")):
        for space, mark in (("pca", PCA_MARK), ("digits8x8", PIXEL_MARK)):
            xs, ys = _series(sweep, "jarzynski", space, f"{key}_mean")
            pos = [(x, y) for x, y in zip(xs, ys) if y > 0]
            if pos:
                axes[2].plot(*zip(*pos), marker=mark, ls=style if space == "pca" else "none",
                             color="tab:blue" if key == "inc_var_param" else "tab:orange",
                             label=f"{label}{'' if space == 'pca' else ' (8x8)'}")  # fmt: skip
    titles = ("resamplings per 100 updates", "mean ESS/N over training", "Jarzynski: Var_w of the increment")
    for ax, title in zip(axes, titles):
        _axis(ax, sweep)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=6)
    axes[1].set_ylim(0, 1.05)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("nats^2 per update (mean over updates)")
    save(fig, path)


def table_rows(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (point, method) for summary.csv and the docs table."""
    rows = []
    for name, p in sweep["points"].items():
        for method, s in p["summary"].items():
            rows.append({"point": name, "dim": p["dim"], "method": method, **s})
    return rows
