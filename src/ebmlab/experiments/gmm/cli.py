"""The command line of ``ebmlab gmm``: its options and ``main``."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ...distributed import NOISE_MODES
from ...sampling.resampling import SCOPES
from ...uncertainty import reliability_warnings
from ..study import (
    add_device_arg,
    add_method_args,
    add_output_args,
    add_walker_args,
    exit_code,
    resolve_device,
    study_phase,
)
from .config import (
    DEFAULT_SEEDS,
    ONE_D,
    PRESETS,
    GmmConfig,
)
from .run import run_study


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick (default, minutes on a laptop), paper (the published settings), tiny (smoke test)",
    )
    add_method_args(p)
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
    add_walker_args(p)
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
    p.add_argument(
        "--noise",
        choices=NOISE_MODES,
        default=None,
        help="under torchrun: draw the whole population's noise in every process (replicated, default: the "
        "1-process numbers) or per-rank counter-based streams (cheaper, reproducible for a given process count)",
    )
    add_device_arg(p)
    p.add_argument("--compile", action="store_true", help="run the walkers' Langevin steps compiled (torch.compile)")
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
            "noise",
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
    study_phase("jarzynski", cfg, cfg.step_size)
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
        device=resolve_device(args.device),
        compile=args.compile,
    )
    if not coll.is_main:
        return 0
    for note in metrics["notes"]:
        print(f"note: {note}")
    for line in reliability_warnings(metrics["runs"]):
        print(line)
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
