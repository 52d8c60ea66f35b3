"""The Gaussian-mixture study (Carbone et al. 2023): Jarzynski-weighted training vs PCD vs CD.

Teacher: two unit-variance Gaussians in d dimensions, at -10 e1 (mass 1/4) and 6 e1 (mass 3/4), with
exactly floor(n/4) of the n data points in the first mode.  Student: the same family with learnable
means and log-weights, the first log-weight frozen (energy gauge), initialised with equal masses and
means near the origin; plain gradient descent with the paper's step sizes (CD: 10x, walkers reset to
data every 4 iterations).  ``--dim 1`` runs the one-dimensional study instead (modes -12 and 9, mass
0.8 on the left, means held at the truth and only the log-weight learned).

Writes ``metrics.json`` (per method and seed: final mode masses, mass_error = |p(left) - target|,
exact and estimated log Z, exact and estimated KL, trajectories, resamplings, wall time) and PNGs.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ...distributed import LOCAL, Collective
from ...energies import GaussianMixture
from ...io import write_json
from ...sampling.walkers import normalized_weights
from ...training import Trainer
from ...uncertainty import reliability_fields
from ..study import RunContext, run_grid, seed_summary, study_phase
from .config import (
    PRESETS,
    GmmConfig,
    make_data,
    student,
    teacher,
)
from .plots import plot_all

__all__ = [
    "PRESETS",
    "GmmConfig",
    "build_trainer",
    "left_index",
    "observe",
    "run_one",
    "run_study",
]


def left_index(model: GaussianMixture) -> int:
    """The component whose mean lies further along -e1 (the minority mode's)."""
    return int(torch.argmin(model.means[:, 0]))


def observe(model: GaussianMixture, trainer: Trainer, weighted: bool, midpoint: float) -> dict[str, float]:
    """Model mass of the left mode and the (weighted) fraction of walkers left of ``midpoint`` (over the
    walkers of all processes)."""
    coll = trainer.collective
    with torch.no_grad():
        mass = float(model.log_masses().exp()[left_index(model)])
        left = (trainer.walkers.x[:, 0] < midpoint).double()
        w = normalized_weights(trainer.walkers.log_w, coll) if weighted else torch.full_like(left, 1 / coll.numel(left))
        return {"mass_left": mass, "walker_frac_left": float(coll.sum((w * left).sum()))}


def build_trainer(
    cfg: GmmConfig, method: str, seed: int, collective: Collective = LOCAL, device: torch.device | str = "cpu"
) -> tuple[Trainer, GaussianMixture, torch.Tensor]:
    """Data, student, optimiser and trainer of one (method, seed) run (walkers split by ``collective``).

    Data and the student's initial means are drawn on the CPU (the same on every device); on another
    ``device`` the model, data and walkers live there and the walkers draw from a generator of that
    device seeded with ``seed`` (reproducible on that device, not equal to the CPU run)."""
    gen = torch.Generator().manual_seed(seed)
    data = make_data(cfg, gen)
    model = student(cfg, gen)
    if torch.device(device).type != "cpu":
        data, model = data.to(device), model.to(device)
        gen = torch.Generator(device).manual_seed(seed)
    factor = cfg.cd_lr_factor if method == "cd" else 1.0
    groups = [{"params": [model.free_log_weights], "lr": cfg.lr_weights * factor}]
    if cfg.learn_means:
        groups.append({"params": [model.means], "lr": cfg.lr_means * factor})
    phase = study_phase(method, cfg, step_size=cfg.step_size, resample_scope=cfg.resample_scope)
    trainer = Trainer(
        model,
        data,
        torch.optim.SGD(groups),
        phase,
        n_walkers=cfg.n_walkers,
        generator=gen,
        log_z_walkers=cfg.log_z_walkers,
        collective=collective,
        noise=cfg.noise,
    )
    return trainer, model, data


def run_one(cfg: GmmConfig, method: str, ctx: RunContext) -> dict[str, Any]:
    """Train one (method, seed) in ``ctx`` and return its metrics (raises DivergenceError on blow-up);
    ``ctx.compile`` changes rounding only, so it is not a recorded setting."""
    trainer, model, data = build_trainer(cfg, method, ctx.seed, ctx.collective, ctx.device)
    trainer.phase = replace(trainer.phase, move=replace(trainer.phase.move, compile=ctx.compile))
    t_model = teacher(cfg).to(data.device)
    with torch.no_grad():
        entropy = float(t_model(data).mean() + t_model.log_z())  # E_data[U_*] + log Z_*
    midpoint = 0.5 * (cfg.left + cfg.right)
    weighted = trainer.phase.weighted
    if ctx.resume and ctx.checkpoint.exists():
        trainer.resume(ctx.checkpoint)

    def record(tr: Trainer, row: dict[str, Any]) -> None:
        if row["step"] % cfg.record_every == 0:
            row.update(observe(model, tr, weighted, midpoint))

    trainer.run(
        cfg.iters,
        checkpoint_path=ctx.checkpoint,
        checkpoint_every=cfg.checkpoint_every,
        progress=ctx.progress,
        desc=f"{method} seed {ctx.seed}",
        callback=record,
    )
    final = trainer.summary() | observe(model, trainer, weighted, midpoint)
    with torch.no_grad():
        mean_u = float(model(data).mean())
        masses = model.log_masses().exp()
    li = left_index(model)
    out: dict[str, Any] = {
        "status": "ok",
        "mode_masses": {"left": float(masses[li]), "right": float(masses[1 - li])},
        "mass_error": abs(float(masses[li]) - cfg.left_mass),
        "walker_frac_left": final["walker_frac_left"],
        "means_e1": model.means[:, 0].tolist(),
        "log_z_exact": final["log_z_exact"],
        "kl_exact": mean_u + final["log_z_exact"] - entropy,
        "n_resamplings": sum(bool(r["resampled"]) for r in trainer.history),
        "ess_frac": final["ess_frac"],
        "wall_time_s": trainer.wall_time_s,
        "data": trainer.settings()["data"],
    }
    history = trainer.history
    rows = [r for r in history if "mass_left" in r]
    traj: dict[str, list] = {k: [r[k] for r in rows] for k in ("step", "mass_left", "walker_frac_left", "ess_frac")}
    traj["kl_exact"] = [r["ce_exact"] - entropy for r in rows]
    traj["resample_steps"] = [r["step"] for r in history if r["resampled"]]
    for key in TRACKED:
        if key in rows[0]:
            traj[key] = [r.get(key) for r in rows]  # the coupled SE ends at a non-multinomial resampling
    if "est_resampled" in history[0]:
        traj["est_resample_steps"] = [r["step"] for r in history if r["est_resampled"]]
        out["n_est_resamplings"] = len(traj["est_resample_steps"])
    if "update_fraction" in history[0]:
        traj["update_fraction"] = [r["update_fraction"] for r in history]
        out["mean_update_fraction"] = sum(traj["update_fraction"]) / len(history)
    if "accept_rate" in history[0]:
        out["accept_rate"] = sum(r["accept_rate"] for r in history) / len(history)
    if "log_z_est" in final:
        traj["kl_est"] = [r["ce_est"] - entropy for r in rows]
        err = [e - x for e, x in zip(traj["log_z_est"], traj["log_z_exact"])]
        out |= {
            "log_z_est": final["log_z_est"],
            "log_z_abs_error": abs(final["log_z_est"] - final["log_z_exact"]),
            "max_log_z_abs_error": max(abs(e) for e in err),
            "kl_est": mean_u + final["log_z_est"] - entropy,
        }
        if "log_z_se" in final:
            out["log_z_se"] = final["log_z_se"]
            out |= reliability_fields(final)
            z_scores = [abs(e) / se for e, se in zip(err, traj["log_z_se"]) if se > 0]
            out["max_log_z_z_score"] = max(z_scores) if z_scores else None
    if "log_z_est_coupled" in final:
        out["log_z_est_coupled"] = final["log_z_est_coupled"]
        out["log_z_error_coupled"] = final["log_z_est_coupled"] - final["log_z_exact"]
    out["trajectory"] = traj
    return out


TRACKED = ("log_z_exact", "log_z_est", "log_z_se", "log_z_est_coupled", "log_z_se_coupled", "est_ess_frac")
SUMMARY_KEYS = (
    "mass_error",
    "log_z_abs_error",
    "max_log_z_abs_error",
    "max_log_z_z_score",
    "log_z_error_coupled",
    "kl_exact",
    "kl_est",
    "n_resamplings",
    "n_est_resamplings",
    "mean_update_fraction",
    "accept_rate",
    "wall_time_s",
)


def run_study(
    cfg: GmmConfig,
    methods: list[str],
    seeds: list[int],
    out: Path,
    resume: bool = False,
    progress: bool | None = None,
    collective: Collective = LOCAL,
    overwrite: bool = False,
    device: torch.device | str = "cpu",
    compile: bool = False,
) -> dict[str, Any]:
    """All (method, seed) runs; writes metrics.json and the plots; returns the metrics (with ``notes``
    from the output directory's checks, e.g. an extended ``iters``).

    With a distributed ``collective`` every process runs this and only the main one writes files."""
    config = asdict(cfg)
    runs, notes = run_grid(
        "gmm",
        config,
        methods,
        seeds,
        out,
        lambda method, ctx: run_one(cfg, method, ctx),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        collective=collective,
        device=device,
        compile=compile,
    )
    metrics = {
        "config": config,
        "methods": methods,
        "seeds": seeds,
        "runs": runs,
        "summary": {m: seed_summary(r.values(), SUMMARY_KEYS) for m, r in runs.items()},
        "notes": notes,
    }
    if collective.is_main:
        write_json(metrics, out / "metrics.json")
        plot_all(metrics, out)
    return metrics
