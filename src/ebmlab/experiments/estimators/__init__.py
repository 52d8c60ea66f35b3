"""Normalizing-constant estimator experiments in Martino's style, on targets with known Z.

``ebmlab estimators --experiment EXP [--reps R] [--out DIR]`` with EXP one of

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

Each writes ``<experiment>.json`` and PNGs into --out.  One module per experiment; this one holds the
command line.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from ...io import write_json
from ..study import add_device_arg, resolve_device
from .axes import AXES, RUNS
from .axes_plots import axis_report, plot_axis
from .equivalence import plot_equivalence, run_equivalence
from .mis import plot_mis, run_mis
from .nce_gmm import NceGmmConfig, plot_nce_gmm, run_nce_gmm
from .noise_scale import plot_noise_scale, run_noise_scale

EXPERIMENTS = ("noise-scale", "mis", "equivalence", "nce-gmm", *AXES)


def _at_least(minimum: int, maximum: int | None = None):
    """argparse type: an integer in [minimum, maximum], with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {value}")
        return value

    return parse


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", choices=EXPERIMENTS, required=True)
    p.add_argument("--reps", type=_at_least(2), default=100, help="replicates per setting (not equivalence, nce-gmm)")
    p.add_argument("--n1", type=_at_least(2), default=500, help="target draws (noise-scale, equivalence, axes)")
    p.add_argument("--n2", type=_at_least(2), default=500, help="proposal draws (noise-scale, equivalence, axes)")
    p.add_argument("--seed", type=_at_least(0, 2**63 - 1), default=0)
    p.add_argument("--steps", type=_at_least(1), default=None, help="NCE training steps (nce-gmm)")
    p.add_argument("--dim", type=_at_least(1), default=None, help="dimension of the GMM study (nce-gmm; default 50)")
    p.add_argument("--n-data", type=_at_least(4), default=None, help="data points of the GMM study (nce-gmm)")
    p.add_argument("--out", type=Path, default=Path("runs/estimators"), help="output directory")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_device_arg(p)


def main(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is not a directory: give a directory for the results")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create --out {args.out}: {exc.strerror}; choose a writable directory") from None
    with torch.device(resolve_device(args.device)):  # every tensor and generator of the run lives there
        res, plot = run(args)
    pngs = plot(res, args.out)
    path = args.out / f"{args.experiment}.json"
    res["pngs"] = [p.name for p in pngs]
    write_json(res, path)
    print(report(res))
    print(f"wrote {path} and {', '.join(p.name for p in pngs)}")
    return 0


def run(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """The chosen experiment's results and its plotting function."""
    if args.experiment == "noise-scale":
        return run_noise_scale(args.reps, args.n1, args.n2, args.seed), plot_noise_scale
    if args.experiment == "mis":
        return run_mis(args.reps, args.seed), plot_mis
    if args.experiment == "equivalence":
        return run_equivalence(args.n1, args.n2, args.seed), plot_equivalence
    if args.experiment in AXES:
        return RUNS[args.experiment](args.reps, args.n1, args.n2, args.seed), plot_axis
    given = {"steps": args.steps, "dim": args.dim, "n_data": args.n_data}
    cfg = NceGmmConfig(**{k: v for k, v in given.items() if v is not None})
    return run_nce_gmm(cfg, args.seed, not args.no_progress), plot_nce_gmm


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
