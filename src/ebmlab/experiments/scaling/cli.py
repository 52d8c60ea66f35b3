"""``ebmlab scaling``: where exact weights stop working as the dimension grows.

Runs the imbalanced-digit study (digits 2/3/6 at 4:2:1, the split rules and model-mass metrics of
``ebmlab mnist``) at every dimension of a label-free PCA of the MNIST digits (``--space pca --dims ...``)
and on the 64 pixels of scikit-learn's 8x8 digits (``--space digits8x8``), with Jarzynski, PCD and CD;
above 2-D every final model's class masses are measured three independent ways and marked unreliable where
they disagree (:mod:`ebmlab.metrics.mass_checks`).  The mechanism options switch on one weight-keeping
mechanism or a combination for every run of the sweep.

Writes ``<out>/<point>/`` (each a complete ``ebmlab mnist`` study directory), ``<out>/metrics.json``,
``<out>/summary.csv``, ``tv_vs_dim.png`` and ``weights_vs_dim.png``.
"""

from __future__ import annotations

import argparse

from ...sampling.resampling import RESAMPLERS
from ...sampling.smc import KERNELS
from ..mnist.config import study_device
from ..study import add_device_arg, add_method_args, add_output_args, exit_code, int_list, name_list
from .config import DEFAULT_DIMS, PRESET_NAMES, QUICK_DIMS, SCALING_SPACES, Mechanisms, default_seeds
from .run import run_sweep


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--space",
        type=name_list(SCALING_SPACES),
        default=list(SCALING_SPACES),
        help="comma-separated: pca (MNIST digits, PCA to each of --dims) and/or digits8x8 (the 64 pixels of "
        "scikit-learn's 8x8 digits); default both",
    )
    p.add_argument(
        "--dims",
        type=int_list,
        default=None,
        help=f"PCA dimensions (default {','.join(map(str, DEFAULT_DIMS))}; quick: {','.join(map(str, QUICK_DIMS))})",
    )
    p.add_argument("--preset", choices=PRESET_NAMES, default="cpu", help="quick (seconds) or cpu (the study)")
    add_method_args(p)
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (default: $EBMLAB_DATA)")
    mech = p.add_argument_group("mechanisms (default: the preset's plain Jarzynski weights)")
    mech.add_argument("--kernel", choices=sorted(KERNELS), default=None, help="walker kernel (ula: the preset's)")
    mech.add_argument("--steps-per-update", type=int, default=None, help="walker moves per parameter update")
    mech.add_argument("--cess-target", type=float, default=None, help="ESS-controlled updates, in (0, 1]")
    mech.add_argument(
        "--lr-ess-target",
        type=float,
        default=None,
        help="ESS-adaptive learning rate for jarzynski: scale every update down until its conditional ESS/N "
        "reaches this, in (0, 1), and back up after updates that reach it",
    )
    mech.add_argument("--walkers", type=int, default=None, help="gradient walkers and estimator population (each)")
    mech.add_argument("--precondition", action="store_true", default=None, help="whitened kernel (data moments)")
    mech.add_argument("--iters", type=int, default=None, help="training iterations (override the preset)")
    mech.add_argument("--ess-threshold", type=float, default=None, help="resample when ESS/N < this, in (0, 1]")
    mech.add_argument("--resampler", choices=sorted(RESAMPLERS), default=None)
    p.add_argument(
        "--recheck",
        action="store_true",
        help="with --resume: measure the final models of the finished runs again with the current mass check "
        "(from their checkpoints; training and its CPU time are kept)",
    )
    add_device_arg(p)
    add_output_args(p, "runs/scaling")


def main(args: argparse.Namespace) -> int:
    for space in args.space:
        study_device(args.device, space)  # every space of the sweep is projected: it runs on the CPU
    fields = ("kernel", "steps_per_update", "cess_target", "lr_ess_target", "walkers", "precondition", "iters")
    mechanisms = Mechanisms(**{k: getattr(args, k) for k in (*fields, "ess_threshold", "resampler")})
    dims = args.dims or list(QUICK_DIMS if args.preset == "quick" else DEFAULT_DIMS)
    sweep = run_sweep(
        args.preset,
        args.space,
        dims,
        args.methods,
        args.seeds or default_seeds(args.preset),
        args.out,
        mechanisms=mechanisms,
        data_dir=args.data_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
        recheck=args.recheck,
    )
    for note in sweep["notes"]:
        print(note)
    for name, point in sweep["points"].items():
        for method, s in point["summary"].items():
            tv = "n/a" if s["model_tv_mean"] is None else f"{s['model_tv_mean']:.3f}"
            print(
                f"{name:>10} {method:>9}: model TV {tv} ({s['n_reliable']}/{s['n_seeds']} checked), "
                f"walker TV {s.get('walker_tv_mean', float('nan')):.3f}, "
                f"resamplings/100 {s.get('resamplings_per_100_mean', 0):.1f} "
                f"(estimator {s.get('estimator_resamplings_per_100_mean', 0):.1f}), "
                f"{s.get('cpu_time_s_mean', 0):.0f} CPU-s/run"
            )
    print(f"wrote {args.out / 'metrics.json'}, summary.csv and plots")
    runs = [r for p in sweep["points"].values() for by_seed in p["runs"].values() for r in by_seed.values()]
    return exit_code(runs)
