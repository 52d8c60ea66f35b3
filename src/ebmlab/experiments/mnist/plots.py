"""Plots of the imbalanced-digit study: class masses of the models and of the walkers vs iteration,
their TV distances to 4:2:1, cross-entropy and resamplings (every space); sample grids and feature
Frechet distances (pixels); density heat maps and log Z (2-D, :mod:`.lowdim_plots`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...io import load_torch
from ..plotting import COLORS, band, plt, save

CLASS_COLORS = ("tab:orange", "deeppink", "tab:cyan")  # digits 2, 3, 6
MODEL_SOURCE = {"pixels": "MALA chains", "exact": "quadrature", "estimated": "AIS"}


def ok_runs(metrics: dict[str, Any], method: str) -> list[tuple[str, dict[str, Any]]]:
    return [(s, r) for s, r in metrics["runs"][method].items() if r.get("status") == "ok"]


def model_source(metrics: dict[str, Any]) -> str:
    """How the model's class masses were computed, in words."""
    if metrics["space"] == "pixels":
        return MODEL_SOURCE["pixels"]
    return MODEL_SOURCE["exact" if "grid" in metrics["evaluation"] else "estimated"]


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
    shown = [(m, s, r) for m in metrics["methods"] for s, r in ok_runs(metrics, m)[:1]]
    if not shown:
        return
    fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 4), squeeze=False)
    for ax, (method, seed, run) in zip(axes[0], shown):
        images = load_torch(out / "runs" / f"{method}_seed{seed}_samples.pt", "walker sample file")
        ax.imshow(image_grid(images), cmap="gray", vmin=0, vmax=1)
        f = ", ".join(f"{v:.2f}" for v in run["walker_masses"])
        ax.set_title(f"{method} (seed {seed}), step {run['final_step']}\nwalkers {f}", fontsize=8)
        ax.axis("off")
    save(fig, out / "samples.png")


def plot_masses(metrics: dict[str, Any], path: Path) -> None:
    """Class masses vs iteration: the model's (top row) and the walkers' (bottom row, weighted for
    Jarzynski), one column per method, mean and min-max band over seeds, dashed 4:2:1 targets."""
    methods = [m for m in metrics["methods"] if ok_runs(metrics, m)]
    if not methods:
        return
    kinds = (("model", f"model class mass ({model_source(metrics)})"), ("walker", "walker class fraction"))
    fig, axes = plt.subplots(2, len(methods), figsize=(4.3 * len(methods), 7), squeeze=False, sharey=True)
    for col, method in enumerate(methods):
        runs = [r for _, r in ok_runs(metrics, method)]
        steps = runs[0]["trajectory"]["step"]
        for row, (kind, label) in enumerate(kinds):
            ax = axes[row][col]
            for c, (digit, target) in enumerate(zip(metrics["digits"], metrics["target_fractions"])):
                color = CLASS_COLORS[c % len(CLASS_COLORS)]
                values = [[np.nan if m is None else m[c] for m in r["trajectory"][f"{kind}_masses"]] for r in runs]
                band(ax, steps, values, f"digit {digit}", color)
                ax.axhline(target, color=color, ls="--", lw=1)
            ax.set(ylim=(-0.02, 1.02), title=f"{method}: {kind} ({len(runs)} seed(s))")
            if col == 0:
                ax.set_ylabel(label)
            if row == 1:
                ax.set_xlabel("training iteration")
    axes[0][0].legend(fontsize=8)
    save(fig, path)


def plot_tv(metrics: dict[str, Any], path: Path) -> None:
    """TV distance to 4:2:1 of the model's class masses and of the walkers' vs iteration, per method."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for method in metrics["methods"]:
        runs = [r for _, r in ok_runs(metrics, method)]
        if runs:
            steps = runs[0]["trajectory"]["step"]
            for ax, kind in zip(axes, ("model", "walker")):
                band(ax, steps, [r["trajectory"][f"{kind}_tv"] for r in runs], method, COLORS.get(method))
    ref = metrics["evaluation"]["reference"]
    floor = ref.get("ebm_images_tv", ref.get("ebm_digits_tv"))
    for ax, title in zip(axes, (f"Model ({model_source(metrics)})", "Walkers (weighted for Jarzynski)")):
        ax.axhline(floor, color="k", ls=":", lw=1, label="training digits")
        ax.set(xlabel="training iteration", ylim=(0, 1), title=title)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("TV distance of class masses to (4/7, 2/7, 1/7)")
    save(fig, path)


def plot_frechet(metrics: dict[str, Any], path: Path) -> None:
    """Feature Frechet distance between walkers and held-out images vs iteration (pixels)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in metrics["methods"]:
        runs = [r for _, r in ok_runs(metrics, method)]
        if runs:
            band(
                ax,
                runs[0]["trajectory"]["step"],
                [r["trajectory"]["frechet"] for r in runs],
                method,
                COLORS.get(method),
            )
    ax.axhline(
        metrics["evaluation"]["reference"]["ebm_images_frechet"], color="k", ls=":", lw=1, label="real vs held-out"
    )
    ax.set(xlabel="training iteration", ylabel="Frechet distance (classifier features)", yscale="log")
    ax.set_title("Walkers vs held-out real images")
    ax.legend(fontsize=8)
    save(fig, path)


def plot_cross_entropy(metrics: dict[str, Any], path: Path) -> None:
    """Estimated cross-entropy (changes only) and cumulative resamplings of the gradient's walkers vs
    iteration.  The resampling count, not ESS/N at the evaluations, shows degeneracy: an evaluation
    that follows a resampling always sees ESS/N = 1."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    iters = metrics["config"]["iters"]
    for method in metrics["methods"]:
        runs = [r for _, r in ok_runs(metrics, method)]
        if not runs:
            continue
        if "ce_est" in runs[0]["trajectory"]:
            ce = [r["trajectory"]["ce_est"] for r in runs]
            band(ax1, runs[0]["trajectory"]["step"], [[v - c[0] for v in c] for c in ce], method, COLORS.get(method))
        if method == "jarzynski":
            counts = [np.searchsorted(r["trajectory"]["resample_steps"], np.arange(iters), side="right") for r in runs]
            band(ax2, np.arange(iters), counts, method, COLORS.get(method))
    ax1.set(
        xlabel="training iteration",
        ylabel="CE estimate minus its first value [nats]",
        title="Estimated cross-entropy (changes only)",
    )
    ax2.plot([0, iters], [0, iters], color="k", ls=":", lw=1, label="one per iteration")
    ax2.set(xlabel="training iteration", ylabel="resamplings so far", title="Resamplings (ESS/N below threshold)")
    for ax in (ax1, ax2):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    save(fig, path)
