"""Plots of the imbalanced-MNIST study: sample grids, class fractions, TV / Frechet, cross-entropy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .plotting import COLORS, band, plt, save

CLASS_COLORS = ("tab:orange", "tab:purple", "tab:cyan")


def _ok_runs(metrics: dict[str, Any], method: str) -> list[tuple[str, dict[str, Any]]]:
    return [(s, r) for s, r in metrics["runs"][method].items() if r.get("status") == "ok"]


def image_grid(images: torch.Tensor, cols: int = 8) -> np.ndarray:
    """Tile images (n, 1, 28, 28) in [-1, 1] into one (rows*29, cols*29) array in [0, 1] (1-px gaps)."""
    x = ((images[:, 0].clamp(-1, 1) + 1) / 2).numpy()
    rows = -(-x.shape[0] // cols)
    grid = np.ones((rows * 29 - 1, cols * 29 - 1))
    for i, img in enumerate(x):
        r, c = divmod(i, cols)
        grid[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28] = img
    return grid


def plot_samples(metrics: dict[str, Any], out: Path) -> None:
    """One panel per method: walkers of its first finished seed (drawn by weight for Jarzynski)."""
    shown = [(m, s, r) for m in metrics["methods"] for s, r in _ok_runs(metrics, m)[:1]]
    if not shown:
        return
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 4), squeeze=False)
    for ax, (method, seed, run) in zip(axes[0], shown):
        images = torch.load(out / "runs" / f"{method}_seed{seed}_samples.pt", weights_only=True)
        ax.imshow(image_grid(images), cmap="gray", vmin=0, vmax=1)
        f = ", ".join(f"{v:.2f}" for v in run["fractions"])
        ax.set_title(f"{method} (seed {seed}), step {run['final_step']}\nfractions {f}, TV {run['tv']:.3f}", fontsize=8)
        ax.axis("off")
    save(fig, out / "samples.png")


def plot_fractions(metrics: dict[str, Any], path: Path) -> None:
    """Class fractions of the walkers vs step, one panel per method, with the 4:2:1 targets."""
    methods = [m for m in metrics["methods"] if _ok_runs(metrics, m)]
    if not methods:
        return
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.8), squeeze=False, sharey=True)
    for ax, method in zip(axes[0], methods):
        runs = [r for _, r in _ok_runs(metrics, method)]
        steps = runs[0]["trajectory"]["step"]
        for c, (digit, target) in enumerate(zip(metrics["digits"], metrics["target_fractions"])):
            color = CLASS_COLORS[c % len(CLASS_COLORS)]
            band(ax, steps, [[f[c] for f in r["trajectory"]["fractions"]] for r in runs], f"digit {digit}", color)
            ax.axhline(target, color=color, ls="--", lw=1)
        weighted = " (weighted)" if method == "jarzynski" else ""
        ax.set(xlabel="training iteration", title=f"{method}{weighted}, {len(runs)} seed(s)", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("walker class fraction (dashed: 4/7, 2/7, 1/7)")
    axes[0][0].legend(fontsize=8)
    save(fig, path)


def plot_tv_frechet(metrics: dict[str, Any], path: Path) -> None:
    """TV distance to 4:2:1 and feature Frechet distance vs step, per method (mean, min-max band)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for method in metrics["methods"]:
        runs = [r for _, r in _ok_runs(metrics, method)]
        if runs:
            steps = runs[0]["trajectory"]["step"]
            band(ax1, steps, [r["trajectory"]["tv"] for r in runs], method, COLORS.get(method))
            band(ax2, steps, [r["trajectory"]["frechet"] for r in runs], method, COLORS.get(method))
    ref = metrics["reference"]
    ax1.axhline(ref["ebm_images_tv"], color="k", ls=":", lw=1, label="real 4:2:1 images")
    ax2.axhline(ref["ebm_images_frechet"], color="k", ls=":", lw=1, label="real vs held-out")
    ax1.set(
        xlabel="training iteration",
        ylabel="TV distance to (4/7, 2/7, 1/7)",
        ylim=(0, 1),
        title="Class proportions of the walkers",
    )
    ax2.set(
        xlabel="training iteration",
        ylabel="Frechet distance (classifier features)",
        yscale="log",
        title="Walkers vs held-out real images",
    )
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    save(fig, path)


def plot_cross_entropy(metrics: dict[str, Any], path: Path) -> None:
    """Estimated cross-entropy and cumulative number of resamplings vs step (weighted walkers only).
    The resampling count, not ESS/N at the evaluations, shows degeneracy: an evaluation that follows
    a resampling always sees ESS/N = 1."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    iters = metrics["config"]["iters"]
    for method in metrics["methods"]:
        runs = [r for _, r in _ok_runs(metrics, method)]
        if runs and "ce_est" in runs[0]["trajectory"]:
            steps = runs[0]["trajectory"]["step"]
            ce = [r["trajectory"]["ce_est"] for r in runs]
            band(ax1, steps, [[v - c[0] for v in c] for c in ce], method, COLORS.get(method))
            counts = [np.searchsorted(r["trajectory"]["resample_steps"], np.arange(iters), side="right") for r in runs]
            band(ax2, np.arange(iters), counts, method, COLORS.get(method))
    ax1.set(
        xlabel="training iteration",
        ylabel="CE estimate minus its first value [nats, V = U/T]",
        title="Estimated cross-entropy (changes only)",
    )
    ax2.plot([0, iters], [0, iters], color="k", ls=":", lw=1, label="one per iteration")
    ax2.set(xlabel="training iteration", ylabel="resamplings so far", title="Resamplings (ESS/N below threshold)")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    save(fig, path)


def plot_all(metrics: dict[str, Any], out: Path) -> None:
    plot_samples(metrics, out)
    plot_fractions(metrics, out / "fractions.png")
    plot_tv_frechet(metrics, out / "tv_frechet.png")
    plot_cross_entropy(metrics, out / "cross_entropy.png")
