"""``ebmlab latent``: latent-space EBM priors, short-run LEBM vs Diffusion-Amortized MCMC (DAMC).

Tasks (each writes ``metrics.json`` and PNGs into ``--out``, on the study skeleton of :mod:`.study`):

- toy (:mod:`.toy`): the 2-D posterior of the DAMC code; the sampler's posterior samples vs a
  long-run Langevin reference: reconstruction errors, MMD, KDE heat maps.
- toy-prior (:mod:`.toy_prior`): the same generator and pinwheel latents with a learned 2-D EBM prior;
  KL of the true latent density to the learned prior by quadrature, exact vs estimated log-likelihoods.
- generate (:mod:`.generate`): MNIST generator + EBM prior; per-pixel test MSE, prior-sample grids,
  and the Frechet distance in the feature space of a 10-class classifier trained on a disjoint split.
- anomaly (:mod:`.anomaly`): train on all digits but ``--heldout-digit``; final and best-of-evaluations
  AUPRC of the negative-log-joint score and of -log p(x).

Samplers (``--sampler``, one or a comma-separated list, each run for every seed): lebm, damc, and jarzynski
(weighted persistent prior walkers, :mod:`ebmlab.latent.weighted_prior`, with ``--posterior lebm|damc`` chains).
toy-prior, generate and anomaly report the test log-likelihood in nats per image (:mod:`ebmlab.latent.evidence`;
the console warnings on it: :mod:`.loglik`).

MNIST comes from the test set in ``--data-dir`` (or ``$EBMLAB_DATA``; the paper preset's anomaly task pools
the training set too when the directory holds it).  Splits are seeded and fixed (independent of ``--seeds``):
generate uses a per-digit split with seed 0 into model-train, model-test and classifier-train images; anomaly
shuffles the normal digits with seed 42 (80 % train).  Settings: :mod:`.settings`; presets and rules: :mod:`.config`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...io import write_json
from ..study import (
    RunContext,
    add_device_arg,
    add_output_args,
    exit_code,
    int_list,
    name_list,
    resolve_device,
    run_grid,
    seed_summary,
)
from .anomaly import run_anomaly
from .config import DEFAULT_SEEDS, PRESETS, TASKS, preset
from .generate import run_generate
from .loglik import loglik_warnings
from .settings import POSTERIORS, SAMPLERS
from .toy import run_toy
from .toy_prior import run_toy_prior

HEADLINE = {
    "toy": ("error_sampler", "error_reference", "mmd_sampler_vs_reference"),
    "toy-prior": ("kl_true_vs_prior", "loglik", "loglik_quadrature", "log_z", "log_z_quadrature"),
    "generate": ("test_mse", "frechet_sampler", "frechet_prior_ld", "classifier_accuracy", "loglik", "loglik_se"),
    "anomaly": ("auprc", "auprc_best_test_selected", "auprc_neg_loglik", "loglik"),
}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=TASKS, required=True, help="toy, toy-prior, generate (MNIST) or anomaly (MNIST)")
    p.add_argument(
        "--sampler",
        type=name_list(SAMPLERS),
        required=True,
        help="comma-separated samplers, each run for every seed: lebm (short-run Langevin), damc, or jarzynski "
        "(weighted persistent prior walkers)",
    )
    p.add_argument(
        "--posterior",
        choices=POSTERIORS,
        default=None,
        help="the jarzynski sampler's posterior chains, lebm (short-run, default) or damc (amortised)",
    )
    p.add_argument(
        "--compare-with",
        type=lambda text: [Path(d) for d in text.split(",") if d],
        default=[],
        help="toy-prior: comma-separated output directories of other samplers' runs to draw beside these",
    )
    p.add_argument("--heldout-digit", type=int, default=None, help="anomaly task: the digit held out (1,4,5,7,9)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick (smoke test, seconds), cpu (about 10 min per seed on one core), paper (the DAMC code's "
        "settings, GPU), lebm-official (the official LEBM code's settings at cpu sizes; --sampler lebm)",
    )
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: preset's)")
    p.add_argument("--iters", type=int, default=None, help="override the preset's training iterations")
    p.add_argument(
        "--energy-reg",
        type=float,
        default=None,
        help="alpha of the prior loss's regulariser alpha (E[E(z+)^2] + E[E(z-)^2]) for any sampler "
        "(default: the preset's lebm_energy_reg for lebm, 0 for damc and jarzynski)",
    )
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $EBMLAB_DATA)")
    add_device_arg(p)
    add_output_args(p, "runs/latent")


def check_digit(task: str, digit: int | None) -> None:
    """--heldout-digit is required by the anomaly task (0-9) and refused by the others."""
    if task == "anomaly":
        if digit is None:
            raise ValueError("--task anomaly needs --heldout-digit D (one of 0-9; the papers use 1, 4, 5, 7, 9)")
        if digit not in range(10):
            raise ValueError(f"unknown held-out digit {digit}; choose one of 0-9")
    elif digit is not None:
        raise ValueError(f"--heldout-digit applies only to --task anomaly, not {task}")


def main(args: argparse.Namespace) -> int:
    check_digit(args.task, args.heldout_digit)
    if args.compare_with and args.task != "toy-prior":
        raise ValueError(f"--compare-with applies only to --task toy-prior, not {args.task}")
    for d in args.compare_with:
        if not any(d.glob("prior_density_*_seed*.npz")):
            what = "holds no toy-prior results (prior_density_*.npz)" if d.is_dir() else "is not a directory"
            raise ValueError(f"--compare-with {str(d)!r} {what}: run --task toy-prior --out there first")
    samplers = list(dict.fromkeys(args.sampler))  # in the order given, once each
    if args.task == "toy" and "jarzynski" in samplers:
        raise ValueError(
            "--task toy has a fixed N(0, I) prior and no prior sampler: drop jarzynski from --sampler, "
            "or use --task toy-prior"
        )
    p = preset(args.preset, samplers, args.iters, args.posterior, args.energy_reg)
    device = resolve_device(args.device)
    seeds = args.seeds or DEFAULT_SEEDS[args.preset]
    progress = False if args.no_progress else None
    digit = args.heldout_digit
    task = f"{args.task}{digit if args.task == 'anomaly' else ''}"
    settings = {"task": args.task, "samplers": samplers, "heldout_digit": digit, "preset": args.preset}
    config: dict[str, Any] = json.loads(json.dumps(settings | asdict(p)))  # as recorded (tuples become lists)

    def run_one(sampler: str, ctx: RunContext) -> dict[str, Any]:
        if args.task == "toy":
            return run_toy(p, sampler, ctx)
        if args.task == "toy-prior":
            return run_toy_prior(p, sampler, ctx, args.compare_with)
        if args.task == "generate":
            return run_generate(p, sampler, ctx)
        return run_anomaly(p, sampler, ctx, digit)

    runs, notes = run_grid(
        "latent",
        config,
        samplers,
        seeds,
        args.out,
        run_one,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=progress,
        device=device,
        data_dir=args.data_dir,
    )
    notes = notes + [f"{s} {note}" for s in samplers for note in loglik_warnings(runs[s])]
    keys = HEADLINE[args.task] + ("wall_time_s",)
    summary = {s: seed_summary(runs[s].values(), keys) for s in samplers}
    metrics = {
        **settings,
        "config": config,
        "device": str(device),
        "seeds": seeds,
        "summary": summary,
        "notes": notes,
        "runs": runs,
    }
    write_json(metrics, args.out / "metrics.json")
    for note in notes:
        print(note)
    for s in samplers:
        print_headline(f"{task}_{s}", HEADLINE[args.task], summary[s])
    print(f"wrote {args.out / 'metrics.json'} and PNGs")
    return exit_code(r for by_seed in runs.values() for r in by_seed.values())


def print_headline(tag: str, keys: tuple[str, ...], summary: dict[str, Any]) -> None:
    """One console line per headline key of a sampler's summary (mean, min, max over its finished seeds)."""
    if not summary["n_seeds"]:
        print(f"{tag}: every run diverged")
    for key in keys:
        if f"{key}_mean" in summary:
            print(
                f"{tag} {key}: {summary[key + '_mean']:.4f} (min {summary[key + '_min']:.4f}, "
                f"max {summary[key + '_max']:.4f}, {summary['n_seeds']} seed(s))"
            )
