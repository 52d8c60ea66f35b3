"""Normalizing-constant estimator experiments in Martino's style, on targets with known Z.

``ebmlab estimators --experiment EXP [--preset quick|cpu] [--reps R] [--seeds S] [--out DIR]`` with EXP one of

- ``noise-scale``: MSE of log Z for IS, reciprocal IS, geometric and optimal bridge, NCE and 2-state
  RLR as the scale s of the proposal/noise q = N(0, s^2 I) varies (Gaussian and Gaussian-mixture
  targets in 1 and 10 dimensions).  PNG: log MSE vs s, one line per estimator.
- ``mis``: standard vs deterministic-mixture MIS, RLR variants (unsampled target, fixed or estimated
  proposal normalizers), NCE against one proposal or against the mixture.
- ``equivalence``: the identities E1-E5 and E7 of docs/method.md (section 7) evaluated on one data set per target.
- ``nce-gmm``: NCE training of the d = 50 Gaussian-mixture student (Carbone et al.'s GMM study):
  mode masses and log Z against the exact values.
- ``ratio``, ``dimension``, ``offset``, ``proposals``: Martino's axes (:mod:`.axes`): MSE of log Z +- SE with
  the CPU time per replicate beside it, as nu = N2/N1, the dimension, the proposal's offset or the proposal
  family (Gaussian, Student-t, Gaussian mixture) varies; ``ratio`` also gives NCE's parameter MSE when it
  learns theta.  ``--n1``/``--n2`` set the sample sizes (``ratio``: their sum is the fixed budget).

Options shared with the other studies: ``--preset quick|cpu`` (``cpu``, the default: 100 replicates, N1 = N2 = 500,
the GMM study's own sizes; ``quick``: seconds per experiment), explicit sizes override it; ``--seeds 0,1,2`` (one run
per seed; ``--seed N`` is a deprecated alias); ``--out``, ``--resume``, ``--overwrite``, ``--no-progress``;
``--device``.  Writes ``study.json``, ``metrics.json`` (config, seeds, runs by experiment and seed, summary over
seeds, notes), ``runs/`` and one set of PNGs per seed into --out.  One module per experiment (the study in
:mod:`.run`, the settings in :mod:`.config`); this one holds the command line.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from ..study import add_device_arg, add_output_args, exit_code, int_list, resolve_device
from .axes import AXES
from .axes_plots import axis_report
from .config import DEFAULT_SEEDS, EXPERIMENTS, PRESET_NAMES, SIZES, USES, option, preset
from .run import run_study

SIZE_HELP = {
    "reps": "replicates per setting (noise-scale, mis, ratio, dimension, offset, proposals)",
    "n1": "target draws (noise-scale, equivalence, axes; ratio: N1 + N2 is the budget)",
    "n2": "proposal draws (noise-scale, equivalence, axes)",
    "steps": "NCE training steps (nce-gmm)",
    "dim": "dimension of the GMM study (nce-gmm)",
    "n_data": "data points of the GMM study (nce-gmm)",
}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", choices=EXPERIMENTS, required=True)
    p.add_argument(
        "--preset", choices=PRESET_NAMES, default="cpu", help="cpu (default, the full settings) or quick (seconds)"
    )
    for name in SIZES:
        p.add_argument(option(name), type=int, default=None, help=SIZE_HELP[name] + " (default: the preset's)")
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: the preset's, 0)")
    p.add_argument("--seed", type=int_list, default=None, help="deprecated: use --seeds")
    add_output_args(p, "runs/estimators")
    add_device_arg(p)


def main(args: argparse.Namespace) -> int:
    exp = args.experiment
    device = resolve_device(args.device)
    seeds = args.seeds
    if args.seed is not None:
        if seeds is not None:
            raise ValueError("--seed is a deprecated alias of --seeds: give --seeds only")
        print("DeprecationWarning: --seed is deprecated and will be removed; use --seeds", file=sys.stderr)
        seeds = args.seed
    given = {name: getattr(args, name) for name in SIZES if getattr(args, name) is not None}
    notes = [f"{option(n)} does not apply to the {exp} experiment (ignored)" for n in given if n not in USES[exp]]
    cfg = preset(exp, args.preset, **{k: v for k, v in given.items() if k in USES[exp]})
    for note in notes:  # said before the run starts, recorded in metrics.json
        print(f"note: {note}")
    seeds = seeds or DEFAULT_SEEDS[args.preset]
    metrics = run_study(
        cfg, args.preset, seeds, args.out, resume=args.resume, overwrite=args.overwrite,
        progress=False if args.no_progress else None, device=device, notes=notes,
    )  # fmt: skip
    for note in metrics["notes"][len(notes) :]:  # the study skeleton's
        print(f"note: {note}")
    for seed, res in metrics["runs"][exp].items():
        print(f"seed {seed}:")
        print(report(res))
    print(f"wrote {args.out / 'metrics.json'} and {', '.join(metrics['pngs'])}")
    return exit_code(metrics["runs"][exp].values())


def report(res: dict[str, Any]) -> str:
    """A plain-text table of the headline numbers."""
    exp = res["experiment"]
    lines = []
    if exp in AXES:
        return "\n".join(axis_report(res))
    if exp in ("noise-scale", "mis"):
        for name, r in res["targets"].items():
            ests = list(r["mse"])
            lines.append(f"{name} (d={r['dim']}, log Z = {r['log_z']:.4f}): MSE of log Z over {res['reps']} reps")
            if exp == "noise-scale":
                lines.append("  s      " + " ".join(f"{e:>16}" for e in ests))
                for i, s in enumerate(r["scales"]):
                    lines.append(f"  {s:<6g} " + " ".join(f"{_fmt(r['mse'][e][i]):>16}" for e in ests))
            else:
                for e in ests:
                    ref = r.get("reference_mse", {}).get(e)
                    lines.append(f"  {e:<28} {_fmt(r['mse'][e]):>10}" + (f"   (reference: {ref:.2e})" if ref else ""))
    elif exp == "equivalence":
        for name, r in res["targets"].items():
            lines.append(
                f"{name}: "
                + ", ".join(
                    f"{k} {v['max_abs_diff']:.1e}" for k, v in r.items() if isinstance(v, dict) and "max_abs_diff" in v
                )
                + f"; E7 SE rel. spread {r['E7_standard_errors']['max_rel_diff']:.3f}"
            )
    else:
        m = res["mode_masses"]
        lines.append(
            f"NCE on the GMM study: mode masses {m['left']:.4f} / {m['right']:.4f} (target 0.25 / 0.75); "
            f"log Z learned {res['log_z_learned']:.4f}, post-hoc NCE {res['log_z_posthoc_nce']:.4f} "
            f"+- {res['log_z_posthoc_nce_se']:.4f}, exact (student) {res['log_z_exact_student']:.4f}, "
            f"teacher {res['log_z_teacher']:.4f}; {res['wall_time_s']:.1f} s"
        )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "failed" if v is None or not math.isfinite(v) else f"{v:.2e}"
