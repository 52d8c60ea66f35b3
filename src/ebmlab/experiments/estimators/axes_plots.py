"""Plots and the text table of the Martino-axes experiments (:mod:`.axes`): MSE of log Z with +- 1 SE bars and the
CPU time per replicate against the axis, one line per estimator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..plotting import plt, save

STYLE = {"nce": {"ls": "--", "marker": "x"}, "rlr": {"ls": ":", "marker": "+"}}


def _positive(values: list[float]) -> list[float]:
    return [v if v is not None and math.isfinite(v) and v > 0 else math.nan for v in values]


def plot_axis(res: dict[str, Any], out: Path, tag: str = "") -> list[Path]:
    axis = res["axis"]
    values = axis["values"]
    categorical = isinstance(values[0], str)
    x = list(range(len(values))) if categorical else values
    extra = "nce_theta" in res
    fig, axes = plt.subplots(1, 3 if extra else 2, figsize=(15 if extra else 11, 4.2))
    for k, (name, r) in enumerate(res["estimators"].items()):
        style = STYLE.get(name, {"marker": "o"})
        mse, err = _positive(r["mse"]), [e if e is not None and math.isfinite(e) else 0.0 for e in r["mse_se"]]
        axes[0].errorbar(x, mse, yerr=err, label=name, lw=2.2 - 0.2 * k, ms=4, capsize=2, **style)
        axes[1].plot(x, _positive(r["cpu_ms"]), label=name, lw=1.5, ms=4, **style)
    if extra:
        t = res["nce_theta"]
        axes[2].errorbar(x, t["param_mse"], yerr=t["param_mse_se"], marker="o", capsize=2, label="parameters (a, b)")
        axes[2].errorbar(x, t["log_z_mse"], yerr=t["log_z_mse_se"], marker="s", capsize=2,
                         label="log Z (-c vs its model's exact)")  # fmt: skip
        nce = res["estimators"]["nce"]
        axes[2].errorbar(x, nce["mse"], yerr=nce["mse_se"], marker="x", ls="--", capsize=2, label="log Z, c only")
        axes[2].set(yscale="log", title="NCE learning theta (diagonal Gaussian EBM)", ylabel="MSE")
        axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set(xlabel=axis["name"])
        if not categorical and min(values) > 0:
            ax.set_xscale("log")
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
        if categorical:
            ax.set_xticks(x, [v.replace(" (", "\n(") for v in values], fontsize=8)
        ax.grid(alpha=0.3, which="both")
    axes[0].set(yscale="log", ylabel=f"MSE of log Z +- SE ({res['reps']} reps)", title="accuracy")
    axes[1].set(yscale="log", ylabel="CPU ms per replicate (one thread)", title="cost")
    axes[1].legend(fontsize=7, loc="center", ncol=2)  # the cost panel's middle is empty: accurate vs cheap lines
    fig.suptitle(_caption(res), fontsize=10)
    path = out / f"{res['experiment']}_mse{tag}.png"
    save(fig, path)
    return [path]


def _caption(res: dict[str, Any]) -> str:
    exp = res["experiment"]
    if exp == "ratio":
        return f"d = 2 Gaussian target, q = N(0, 1.5² I), N1 + N2 = {res['total']} (optimal bridge = NCE = RLR)"
    if exp == "dimension":
        return f"target N(0.3·1, 0.8² I), q = N(0, 1.2² I), N1 = {res['n1']}, N2 = {res['n2']}"
    if exp == "offset":
        return f"target N(0, I), q = N(δ e1, 0.9² I), N1 = {res['n1']}, N2 = {res['n2']}"
    return f"two-mode Gaussian-mixture target (d = 2), N1 = {res['n1']}, N2 = {res['n2']}"


def axis_report(res: dict[str, Any]) -> list[str]:
    """Lines: per estimator, MSE +- SE and CPU ms per replicate at each axis value."""
    values = res["axis"]["values"]
    lines = [f"{res['experiment']}: MSE of log Z +- SE [CPU ms/replicate] over {res['reps']} reps"]
    lines.append(
        "  " + res["axis"]["name"] + ": " + ", ".join(str(v if isinstance(v, str) else f"{v:g}") for v in values)
    )
    for name, r in res["estimators"].items():
        cells = [_cell(m, s, c) for m, s, c in zip(r["mse"], r["mse_se"], r["cpu_ms"])]
        lines.append(f"  {name:<26} " + " | ".join(cells))
    if "nce_theta" in res:
        t = res["nce_theta"]
        lines.append("  nce (theta learned): parameter MSE " + " | ".join(
            _cell(m, s, c) for m, s, c in zip(t["param_mse"], t["param_mse_se"], t["cpu_ms"])))  # fmt: skip
        lines.append("  nce (theta learned): log Z MSE     " + " | ".join(
            _cell(m, s, c) for m, s, c in zip(t["log_z_mse"], t["log_z_mse_se"], t["cpu_ms"])))  # fmt: skip
    return lines


def _cell(mse: float, se: float, cpu: float) -> str:
    if mse is None or not math.isfinite(mse):
        return "-"
    return f"{mse:.2e} +- {se:.1e} [{cpu:.2f}]"
