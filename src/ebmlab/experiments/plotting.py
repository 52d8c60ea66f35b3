"""Matplotlib helpers shared by the experiment reports (Agg backend, no screen needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..io import save_figure

COLORS = {"jarzynski": "tab:blue", "pcd": "tab:red", "cd": "tab:green", "nce": "tab:purple"}


def band(
    ax,
    x: Sequence[float] | np.ndarray,
    ys: Sequence[Sequence[float] | np.ndarray],
    label: str,
    color: str | None = None,
) -> None:
    """Mean line with a min-max band over repetitions (rows of ys, equal length)."""
    arr = np.asarray(ys, dtype=float)
    ax.plot(x, arr.mean(0), label=label, color=color, lw=1.5)
    if arr.shape[0] > 1:
        ax.fill_between(x, arr.min(0), arr.max(0), color=color, alpha=0.2, lw=0)


def save(fig, path: Path) -> None:
    """Lay out, write atomically as PNG, and close."""
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
