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

import argparse
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..distributed import LOCAL, Collective
from ..energies import GaussianMixture
from ..io import write_json
from ..sampling.resampling import RESAMPLERS
from ..sampling.smc import SAMPLERS
from ..sampling.walkers import SCOPES, normalized_weights
from ..training import METHODS, Trainer, negative_phase
from .gmm_plots import plot_all
from .study import add_output_args, exit_code, int_list, name_list, run_grid, seed_summary

DTYPE = torch.float64


@dataclass(frozen=True)
class GmmConfig:
    """Settings of one study (all methods and seeds share them)."""

    dim: int = 50
    left: float = -10.0  # position of the minority mode along e1
    right: float = 6.0
    left_mass: float = 0.25
    learn_means: bool = True
    n_data: int = 10_000
    n_walkers: int = 10_000
    step_size: float = 0.1
    iters: int = 8000
    lr_means: float = 0.0025
    lr_weights: float = 0.0125
    cd_lr_factor: float = 10.0
    cd_reset_every: int = 4
    resampler: str = "systematic"
    ess_threshold: float = 0.5
    resample_scope: str = "global"  # with several processes: "global" or "local" resampling
    log_z_walkers: int | None = None  # estimator population size M (None: N/4 for Jarzynski, 0 for PCD/CD)
    kernel: str = "ula"  # walker kernel: "ula" or "mala"
    cess_target: float | None = None  # ESS-controlled updates (Jarzynski only); None = off
    init_offset: float = 0.1  # student means start at -+ init_offset e1 + init_noise * N(0, I)
    init_noise: float = 0.01
    record_every: int = 20
    checkpoint_every: int = 500


PRESETS: dict[str, GmmConfig] = {
    "paper": GmmConfig(),
    "quick": GmmConfig(n_data=2000, n_walkers=2000, iters=2000),
    "tiny": GmmConfig(dim=5, n_data=200, n_walkers=200, iters=60, record_every=10, checkpoint_every=20),
}
ONE_D = dict(dim=1, left=-12.0, right=9.0, left_mass=0.8, learn_means=False)
DEFAULT_SEEDS = {"paper": [0, 1, 2, 3, 4], "quick": [0, 1, 2], "tiny": [0]}


def teacher(cfg: GmmConfig) -> GaussianMixture:
    e1 = torch.zeros(cfg.dim, dtype=DTYPE)
    e1[0] = 1.0
    masses = torch.tensor([cfg.left_mass, 1 - cfg.left_mass], dtype=DTYPE)
    return GaussianMixture(torch.stack([cfg.left * e1, cfg.right * e1]), masses.log())


def make_data(cfg: GmmConfig, generator: torch.Generator) -> torch.Tensor:
    """n_data teacher draws with exactly floor(n * left_mass) in the left mode, (n, d)."""
    n_left = math.floor(cfg.n_data * cfg.left_mass)
    comp = torch.cat([torch.zeros(n_left, dtype=torch.long), torch.ones(cfg.n_data - n_left, dtype=torch.long)])
    return teacher(cfg).sample_components(comp, generator)


def student(cfg: GmmConfig, generator: torch.Generator) -> GaussianMixture:
    """Equal masses; means near the origin (or at the truth when means are not learned); b_0 frozen."""
    if cfg.learn_means:
        e1 = torch.zeros(cfg.dim, dtype=DTYPE)
        e1[0] = cfg.init_offset
        noise = torch.randn(2, cfg.dim, generator=generator, dtype=DTYPE)
        means = torch.stack([-e1, e1]) + cfg.init_noise * noise
    else:
        means = teacher(cfg).means.detach()
    return GaussianMixture(means, torch.zeros(2, dtype=DTYPE), frozen=[0], learn_means=cfg.learn_means)


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
    cfg: GmmConfig, method: str, seed: int, collective: Collective = LOCAL
) -> tuple[Trainer, GaussianMixture, torch.Tensor]:
    """Data, student, optimiser and trainer of one (method, seed) run (walkers split by ``collective``)."""
    gen = torch.Generator().manual_seed(seed)
    data = make_data(cfg, gen)
    model = student(cfg, gen)
    factor = cfg.cd_lr_factor if method == "cd" else 1.0
    groups = [{"params": [model.free_log_weights], "lr": cfg.lr_weights * factor}]
    if cfg.learn_means:
        groups.append({"params": [model.means], "lr": cfg.lr_means * factor})
    overrides: dict[str, Any] = {"step_size": cfg.step_size, "kernel": cfg.kernel, "resample_scope": cfg.resample_scope}
    if method == "jarzynski":
        overrides.update(resampler=cfg.resampler, ess_threshold=cfg.ess_threshold, cess_target=cfg.cess_target)
    if method == "cd":
        overrides["reset_every"] = cfg.cd_reset_every
    phase = negative_phase(method, **overrides)
    trainer = Trainer(
        model,
        data,
        torch.optim.SGD(groups),
        phase,
        n_walkers=cfg.n_walkers,
        generator=gen,
        log_z_walkers=cfg.log_z_walkers,
        collective=collective,
    )
    return trainer, model, data


def run_one(
    cfg: GmmConfig,
    method: str,
    seed: int,
    ckpt: Path | None,
    resume: bool,
    progress: bool | None,
    collective: Collective = LOCAL,
) -> dict[str, Any]:
    """Train one (method, seed) and return its metrics (raises DivergenceError on blow-up)."""
    trainer, model, data = build_trainer(cfg, method, seed, collective)
    t_model = teacher(cfg)
    with torch.no_grad():
        entropy = float(t_model(data).mean() + t_model.log_z())  # E_data[U_*] + log Z_*
    midpoint = 0.5 * (cfg.left + cfg.right)
    weighted = trainer.phase.weighted
    if resume and ckpt is not None and ckpt.exists():
        trainer.resume(ckpt)

    def record(tr: Trainer, row: dict[str, Any]) -> None:
        if row["step"] % cfg.record_every == 0:
            row.update(observe(model, tr, weighted, midpoint))

    trainer.run(
        cfg.iters,
        checkpoint_path=ckpt,
        checkpoint_every=cfg.checkpoint_every,
        progress=progress,
        desc=f"{method} seed {seed}",
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
        lambda method, seed, ckpt: run_one(cfg, method, seed, ckpt, resume, progress, collective),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        collective=collective,
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


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick (default, minutes on a laptop), paper (the published settings), tiny (smoke test)",
    )
    p.add_argument(
        "--methods",
        type=name_list(METHODS),
        default=list(METHODS),
        help="comma-separated subset of " + ",".join(METHODS),
    )
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: preset's)")
    p.add_argument(
        "--dim",
        type=int,
        default=None,
        help="dimension; 1 selects the one-dimensional study (modes -12 and 9, mass 0.8 left)",
    )
    p.add_argument("--walkers", type=int, default=None, help="number of walkers N")
    p.add_argument("--data", type=int, default=None, dest="n_data", help="number of data points n")
    p.add_argument("--iters", type=int, default=None, help="training iterations")
    p.add_argument("--step-size", type=float, default=None, help="ULA step size h")
    p.add_argument("--resampler", choices=sorted(RESAMPLERS), default=None)
    p.add_argument("--ess-threshold", type=float, default=None, help="resample when ESS/N < this, in (0, 1]")
    p.add_argument(
        "--resample-scope",
        choices=SCOPES,
        default=None,
        help="under torchrun: resample the whole population (global, default) or each process's walkers",
    )
    p.add_argument(
        "--log-z-walkers",
        type=int,
        default=None,
        dest="log_z_walkers",
        help="estimator population size M, walkers that give log Z but never enter the gradient "
        "(default: N/4 for jarzynski, 0 for pcd/cd; 0 = off; a value applies to every method)",
    )
    p.add_argument("--kernel", choices=sorted(SAMPLERS), default=None, help="walker kernel (default ula)")
    p.add_argument(
        "--cess-target",
        type=float,
        default=None,
        help="ESS-controlled updates for jarzynski: shorten each parameter update until the walkers' "
        "conditional ESS is at least this, in (0, 1] (default off)",
    )
    add_output_args(p, "runs/gmm")


def config_from_args(args: argparse.Namespace) -> GmmConfig:
    cfg = PRESETS[args.preset]
    if args.dim is not None:
        if args.dim < 1:
            raise ValueError(f"--dim must be >= 1, got {args.dim}")
        cfg = replace(cfg, **ONE_D) if args.dim == 1 else replace(cfg, dim=args.dim)
    overrides = {
        k: getattr(args, k)
        for k in (
            "n_data",
            "iters",
            "step_size",
            "resampler",
            "ess_threshold",
            "resample_scope",
            "log_z_walkers",
            "kernel",
            "cess_target",
        )
        if getattr(args, k) is not None
    }
    if args.walkers is not None:
        overrides["n_walkers"] = args.walkers
    cfg = replace(cfg, **overrides)
    if cfg.n_walkers < 2:
        raise ValueError(f"--walkers must be >= 2, got {cfg.n_walkers}")
    if cfg.iters < 1 or cfg.n_data < 2:
        raise ValueError("--iters must be >= 1 and --data >= 2")
    if cfg.log_z_walkers is not None and (cfg.log_z_walkers < 0 or cfg.log_z_walkers == 1):
        raise ValueError(f"--log-z-walkers must be 0 (off) or >= 2, got {cfg.log_z_walkers}")
    negative_phase(
        "jarzynski",
        step_size=cfg.step_size,
        resampler=cfg.resampler,
        ess_threshold=cfg.ess_threshold,
        kernel=cfg.kernel,
        cess_target=cfg.cess_target,
    )
    return cfg


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    seeds = args.seeds or DEFAULT_SEEDS[args.preset]
    coll = args.collective
    metrics = run_study(
        cfg,
        args.methods,
        seeds,
        args.out,
        resume=args.resume,
        progress=False if args.no_progress else None,
        collective=coll,
        overwrite=args.overwrite,
    )
    if not coll.is_main:
        return 0
    for note in metrics["notes"]:
        print(f"note: {note}")
    for method, s in metrics["summary"].items():
        if not s["n_seeds"]:
            print(f"{method:>10}: every run diverged")
            continue
        line = f"{method:>10}: mass_error {s['mass_error_mean']:.3f} (max {s['mass_error_max']:.3f})"
        if "log_z_abs_error_mean" in s:
            line += f", |log Z est - exact| {s['log_z_abs_error_mean']:.3f}"
        print(line + f", {s['wall_time_s_mean']:.1f} s/run")
    print(f"wrote {args.out / 'metrics.json'} and plots")
    return exit_code(r for by_seed in metrics["runs"].values() for r in by_seed.values())
