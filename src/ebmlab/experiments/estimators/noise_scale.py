"""``--experiment noise-scale``: MSE of log Z for IS, reciprocal IS, geometric and optimal bridge, NCE
and two-state RLR (registry entries) as the scale s of the proposal q = N(0, s^2 I) varies."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import torch
from matplotlib.ticker import NullFormatter

from ...estimators import ESTIMATORS, GaussianNoise
from ..plotting import plt, save
from .targets import draws, error_summary, seeded, targets

TWO_SAMPLE = ("is", "ris", "bridge-geometric", "bridge-optimal", "nce", "rlr")


def run_noise_scale(reps: int, n1: int, n2: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for t in targets():
        g = seeded(seed)
        rows: dict[str, list[Any]] = {name: [] for name in TWO_SAMPLE}
        for s in t.scales:
            q = GaussianNoise(torch.zeros(t.dim), s)
            x = draws(t.model.sample, reps, n1, g)
            problem = t.problem([q], x, draws(q.sample, reps, n2, g))
            for name in TWO_SAMPLE:
                rows[name].append(error_summary(partial(ESTIMATORS[name], problem), t.log_z))
        results[t.name] = {
            "dim": t.dim,
            "log_z": t.log_z,
            "scales": list(t.scales),
            "mse": {k: [r["mse"] for r in v] for k, v in rows.items()},
            "details": rows,
        }
    return {"experiment": "noise-scale", "reps": reps, "n1": n1, "n2": n2, "seed": seed, "targets": results}


def plot_noise_scale(res: dict[str, Any], out: Path, tag: str = "") -> list[Path]:
    fig, axes = plt.subplots(1, len(res["targets"]), figsize=(4.2 * len(res["targets"]), 3.8))
    for ax, (name, r) in zip(axes, res["targets"].items()):
        for k, (est, mse) in enumerate(r["mse"].items()):
            style = {"ls": "--", "marker": "x"} if est in ("nce", "rlr") else {"marker": "o"}
            ax.plot(
                r["scales"],
                [m if m is not None and m > 0 else math.nan for m in mse],
                label=est,
                lw=2.5 - 0.35 * k,
                ms=4,
                **style,
            )
        ax.set(xscale="log", yscale="log", xlabel="proposal / noise scale s", title=f"{name} (d={r['dim']})")
        ax.set_xticks(r["scales"], [f"{s:g}" for s in r["scales"]])
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor-tick labels of a short log axis overlap
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"MSE of log Z ({res['reps']} reps)")
    axes[0].legend(fontsize=8, loc="upper center")
    fig.suptitle(
        f"q = N(0, s² I), N1 = {res['n1']} target draws, N2 = {res['n2']} noise draws "
        "(optimal bridge = NCE = RLR exactly)",
        fontsize=10,
    )
    path = out / f"noise_scale_mse{tag}.png"
    save(fig, path)
    return [path]
