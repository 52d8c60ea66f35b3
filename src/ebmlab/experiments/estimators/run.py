"""The ``ebmlab estimators`` study on the study skeleton: one variant (the experiment) run once per seed, each run
the experiment's own result; per-seed plots; the headline numbers summarised over seeds; ``metrics.json``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ...io import write_json
from ..study import RunContext, run_grid, seed_summary
from .axes import AXES, RUNS
from .axes_plots import plot_axis
from .config import EstimatorsConfig
from .equivalence import plot_equivalence, run_equivalence
from .mis import plot_mis, run_mis
from .nce_gmm import plot_nce_gmm, run_nce_gmm
from .noise_scale import plot_noise_scale, run_noise_scale

PLOTS: dict[str, Callable[[dict[str, Any], Path, str], list[Path]]] = {
    "noise-scale": plot_noise_scale,
    "mis": plot_mis,
    "equivalence": plot_equivalence,
    "nce-gmm": plot_nce_gmm,
    **{axis: plot_axis for axis in AXES},
}


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "noise-scale": run_noise_scale,
    "mis": run_mis,
    "equivalence": run_equivalence,
    **RUNS,
}  # each takes the sizes its experiment uses (config.USES) and the seed


def run_experiment(cfg: EstimatorsConfig, seed: int, progress: bool) -> dict[str, Any]:
    """The experiment's result for one seed (on the default device; ``progress``: NCE training's bar)."""
    if cfg.experiment == "nce-gmm":
        return run_nce_gmm(cfg.nce_gmm(), seed, progress)
    return RUNNERS[cfg.experiment](**cfg.used(), seed=seed)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def headline(res: dict[str, Any]) -> dict[str, float | None]:
    """A run's headline numbers under flat keys (``target/estimator/mse@s=0.5`` style; non-finite ones as None):
    the MSEs of log Z, the equivalences' max |difference|, or NCE's mode mass and log Z on the GMM study."""
    exp = res["experiment"]
    if exp == "noise-scale":
        found = {
            f"{t}/{e}/mse@s={s:g}": v
            for t, r in res["targets"].items()
            for e, col in r["mse"].items()
            for s, v in zip(r["scales"], col)
        }
    elif exp == "mis":
        found = {f"{t}/{e}/mse": v for t, r in res["targets"].items() for e, v in r["mse"].items()}
    elif exp == "equivalence":
        found = {
            f"{t}/{k}/{field}": v[field]
            for t, r in res["targets"].items()
            for k, v in r.items()
            if isinstance(v, dict)
            for field in ("max_abs_diff", "max_rel_diff")
            if field in v
        }
    elif exp == "nce-gmm":
        keys = ("log_z_learned", "log_z_posthoc_nce", "log_z_exact_student", "log_z_teacher", "wall_time_s")
        found = {"mode_mass_left": res["mode_masses"]["left"], **{k: res[k] for k in keys}}
    else:
        labels = [v if isinstance(v, str) else f"{v:g}" for v in res["axis"]["values"]]
        found = {f"{e}/mse@{a}": v for e, r in res["estimators"].items() for a, v in zip(labels, r["mse"])}
        if "nce_theta" in res:
            found |= {f"nce_theta/param_mse@{a}": v for a, v in zip(labels, res["nce_theta"]["param_mse"])}
    return {k: _number(v) for k, v in found.items()}


def summary(by_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """:func:`~ebmlab.experiments.study.seed_summary` of the runs' :func:`headline` numbers."""
    rows = [{"status": r.get("status"), **(headline(r) if r.get("status") == "ok" else {})} for r in by_seed.values()]
    keys = dict.fromkeys(k for row in rows for k in row if k != "status")
    return seed_summary(rows, keys)


def run_study(
    cfg: EstimatorsConfig,
    preset: str,
    seeds: Sequence[int],
    out: Path,
    *,
    resume: bool,
    overwrite: bool,
    progress: bool | None,
    device: torch.device,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """Run (or on ``resume`` reuse) every seed, plot each, write ``metrics.json`` (with ``notes`` and the skeleton's
    own); returns the metrics."""
    exp = cfg.experiment
    config = {"experiment": exp, "preset": preset, **cfg.used()}

    def run_one(variant: str, ctx: RunContext) -> dict[str, Any]:
        with torch.device(ctx.device):  # every tensor and generator of the run lives there
            return {**run_experiment(cfg, ctx.seed, ctx.progress is not False), "status": "ok"}

    runs, grid_notes = run_grid(
        "estimators", config, [exp], seeds, out, run_one, resume=resume, overwrite=overwrite, progress=progress,
        device=device,
    )  # fmt: skip
    pngs = [
        png.name for seed, r in runs[exp].items() if r["status"] == "ok" for png in PLOTS[exp](r, out, f"_seed{seed}")
    ]
    metrics = {
        "experiment": exp,
        "preset": preset,
        "seeds": list(seeds),
        "config": config,
        "runs": runs,
        "summary": {exp: summary(runs[exp])},
        "notes": [*notes, *grid_notes],
        "pngs": pngs,
    }
    write_json(metrics, out / "metrics.json")
    return metrics
