"""Figures of ``ebmlab latent``: image grids, the toy's KDE panels, anomaly-score histograms and the
amortisation diagnostic over training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...latent.toy import kde_grid
from ..plotting import plt, save


def image_grid(images: torch.Tensor, path: Path, title: str, ncol: int = 10) -> None:
    """Save images (N, 1, 28, 28) in [-1, 1] as a grid PNG."""
    x = images[: (images.shape[0] // ncol) * ncol].detach().cpu().clamp(-1, 1).add(1).div(2).squeeze(1).numpy()
    rows = x.shape[0] // ncol
    grid = x.reshape(rows, ncol, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, ncol * 28)
    fig, ax = plt.subplots(figsize=(ncol * 0.6, rows * 0.6 + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    save(fig, path)


def toy_kde(panels: list[tuple[str, torch.Tensor]], title: str, path: Path) -> None:
    """KDE heat maps (bandwidth 0.15, [-4, 4]^2) of (title, latents (n, 2)) panels side by side."""
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.8))
    for ax, (name, z) in zip(axes, panels):
        ax.imshow(kde_grid(z.cpu()), origin="lower", extent=(-4, 4, -4, 4), cmap="viridis")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([-4, 0, 4])
        ax.set_yticks([-4, 0, 4])
    fig.suptitle(title, fontsize=10)
    save(fig, path)


def density_panels(panels: list[tuple[str, np.ndarray | torch.Tensor]], title: str, path: Path) -> None:
    """Heat maps on [-4, 4]^2 side by side: each panel a density grid (n, n) (rows = second coordinate) or
    latents (N, 2) shown by their KDE (bandwidth 0.15); one colour scale per panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.6), squeeze=False)
    for ax, (name, v) in zip(axes[0], panels):
        grid = kde_grid(v.cpu()) if isinstance(v, torch.Tensor) else v
        ax.imshow(grid, origin="lower", extent=(-4, 4, -4, 4), cmap="viridis")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([-4, 0, 4])
        ax.set_yticks([-4, 0, 4])
    fig.suptitle(title, fontsize=10)
    save(fig, path)


def score_histogram(scores: np.ndarray, is_anom: np.ndarray, digit: int, title: str, path: Path) -> None:
    """Histograms of the anomaly scores of normal and held-out test images."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(scores.min(), np.quantile(scores, 0.99), 50)
    ax.hist(scores[is_anom == 0], bins.tolist(), alpha=0.6, density=True, label="normal")
    ax.hist(scores[is_anom == 1], bins.tolist(), alpha=0.6, density=True, label=f"digit {digit} (anomaly)")
    ax.set_xlabel("score = |x - g(z)|^2 + E(z) + |z|^2/2")
    ax.set_title(title, fontsize=10)
    ax.legend()
    save(fig, path)


DIAG_LINES = {
    "mse_ema_q": ("EMA sampler draws z0 ~ Q_bar(z|x), no LD", "tab:orange", "--"),
    "mse_chains": ("training chains (after the posterior LD steps)", "tab:blue", "-"),
    "mse_normal_start": ("same LD steps from N(0, I)", "tab:gray", ":"),
}


def amortisation_plot(diag: list[dict[str, Any]], title: str, path: Path) -> None:
    """Per-pixel reconstruction MSE of the training images over training, one line per chain start."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    steps = [r["step"] for r in diag]
    lines = dict(DIAG_LINES)
    if "mse_ema_q" not in diag[0]:  # LEBM: the training chains are the N(0, I)-started ones
        lines = {"mse_chains": ("training chains: posterior LD from N(0, I)", "tab:gray", ":")}
    for key, (label, color, style) in lines.items():
        ax.plot(steps, [r[key] for r in diag], style, color=color, marker="o", ms=3, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("per-pixel MSE of g(z) (training images)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    save(fig, path)


def loglik_check_plot(checks: list[tuple[str, dict[str, Any]]], title: str, path: Path) -> None:
    """IS minus AIS estimates of log p~(x) per check image, in nats, with +-3 combined standard errors, for
    each (label, ``loglik_ais_check`` record); the legend gives the mean difference in SEs."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    offsets = np.linspace(-0.2, 0.2, len(checks)) if len(checks) > 1 else [0.0]
    for off, (label, c) in zip(offsets, checks):
        im = c["per_image"]
        diff = np.asarray(im["is"]) - np.asarray(im["ais"])
        se = np.hypot(im["is_se"], im["ais_se"])
        ax.errorbar(np.arange(len(diff)) + off, diff, yerr=3 * se, fmt="o", capsize=3,
                    label=f"{label}: mean {c['is_minus_ais_in_se']:+.2f} SE")  # fmt: skip
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("check image")
    ax.set_ylabel("IS - AIS, log p~(x) (nats), bars 3 SE")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    save(fig, path)
