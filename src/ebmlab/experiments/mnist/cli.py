"""The command line of ``ebmlab mnist``: its options and ``main``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from ...data.projection import SPACES
from ...uncertainty import reliability_warnings
from ..study import (
    add_device_arg,
    add_method_args,
    add_output_args,
    add_walker_args,
    exit_code,
)
from .config import (
    DEFAULT_SPACE,
    PRESETS,
    PixelConfig,
    StudyConfig,
    default_seeds,
    preset,
    study_device,
)
from .run import run_study


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--space",
        choices=SPACES,
        default=DEFAULT_SPACE,
        help="lda (default: digits projected to 2-D, exact model masses), pca (label-free, --dim 8 by "
        "default) or pixels (the paper's CNN energy)",
    )
    p.add_argument("--dim", type=int, default=None, help="dimension of the lda (<= 2) or pca projection")
    presets = sorted({name for by_space in PRESETS.values() for name in by_space})
    p.add_argument(
        "--preset",
        choices=presets,
        default="cpu",
        help="quick (smoke test), cpu (default; the study on a CPU: 5 seeds in lda/pca, 3 in pixels), "
        "paper (pixels only: the published settings, for a GPU)",
    )
    add_method_args(p)
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (default: $EBMLAB_DATA)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (override the preset)")
    p.add_argument("--walkers", type=int, default=None, help="number of walkers N (override the preset)")
    add_walker_args(p)
    add_device_arg(p)
    p.add_argument("--compile", action="store_true", help="run the walkers' Langevin steps compiled (torch.compile)")
    add_output_args(p, "runs/mnist")


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """The preset of ``--space`` with ``--dim`` and the other overrides (ValueError for bad values)."""
    names = ("iters", "resampler", "ess_threshold", "kernel", "cess_target")
    overrides: dict[str, Any] = {k: getattr(args, k) for k in names}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    cfg = preset(args.space, args.preset, args.dim, **overrides)
    if args.walkers is not None:
        batch = {"walker_batch": min(cfg.walker_batch, args.walkers)} if isinstance(cfg, PixelConfig) else {}
        cfg = replace(cfg, n_walkers=args.walkers, **batch)
    return cfg


def main(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    coll = args.collective
    metrics = run_study(
        cfg,
        args.methods,
        args.seeds or default_seeds(args.space, args.preset),
        args.out,
        data_dir=args.data_dir,
        resume=args.resume,
        progress=False if args.no_progress else None,
        collective=coll,
        overwrite=args.overwrite,
        device=study_device(args.device, cfg.space),
        compile=args.compile,
    )
    if not coll.is_main:
        return 0
    for note in metrics["notes"]:
        print(note)
    for line in reliability_warnings(metrics["runs"]):
        print(line)
    for method, s in metrics["summary"].items():
        line = f"{method:>10}: model TV {s['model_tv_mean']:.3f} [{s['model_tv_min']:.3f}, {s['model_tv_max']:.3f}]"
        line += f", walker TV {s['walker_tv_mean']:.3f}"
        if "log_z_error_mean" in s:
            line += f", log Z error [{s['log_z_error_min']:+.3f}, {s['log_z_error_max']:+.3f}]"
        print(f"{line}, {s['wall_time_s_mean']:.0f} s/run ({s['n_seeds']} seeds)")
    print(f"wrote {args.out / 'metrics.json'} and plots")
    return exit_code(r for by_seed in metrics["runs"].values() for r in by_seed.values())
