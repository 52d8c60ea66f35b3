"""``ebmlab lvm``: latent-variable models fitted by maximum marginal likelihood with weighted posterior walkers
(JALA-EM, Cuin, Carbone & Akyildiz, NeurIPS 2025), with the evidence from an estimator population.

Experiments (each writes ``metrics.json``, ``runs/*.json`` and PNGs into ``--out``, on the study skeleton):

- order-selection (:mod:`.order_selection`): the paper's Table 1, polynomial order by the largest evidence;
  variants are the candidate orders, each a batched fit over every (d_y, p*) cell and trial of a seed.
- error-model (:mod:`.error_model`): Gaussian against Student-t errors; variants are the two models.
- logistic (:mod:`.logistic`): Bayesian logistic regression, JALA-EM against PGD and SOUL; variants are
  method and number of walkers, one fit per seed.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...io import write_json
from ...lvm import METHODS
from ..study import RunContext, add_output_args, exit_code, int_list, name_list, run_grid
from . import error_model, logistic, order_selection, plots
from .common import pooled
from .config import DEFAULT_SEEDS, EXPERIMENTS, PRESET_NAMES, preset


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", choices=EXPERIMENTS, default="order-selection", help="which study to run")
    p.add_argument("--preset", choices=PRESET_NAMES, default="quick", help="quick (seconds) or cpu (the full study)")
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: the preset's)")
    p.add_argument("--trials", type=int, default=None, help="trials per cell (order-selection, error-model)")
    p.add_argument("--iters", type=int, default=None, help="iterations K (default: the preset's)")
    p.add_argument(
        "--methods", type=name_list(METHODS), default=None, help="logistic: comma-separated subset of jala,pgd,soul"
    )
    add_output_args(p, "runs/lvm")


def main(args: argparse.Namespace) -> int:
    exp = args.experiment
    overrides: dict[str, Any] = {"iters": args.iters}
    if exp != "logistic":
        overrides["trials"] = args.trials
    elif args.trials is not None:
        raise ValueError("--trials applies to order-selection and error-model; logistic runs one fit per seed")
    if args.methods is not None:
        if exp != "logistic":
            raise ValueError("--methods applies to the logistic experiment only")
        overrides["methods"] = tuple(args.methods)
    cfg = preset(exp, args.preset, **overrides)
    seeds = args.seeds or DEFAULT_SEEDS[exp]
    progress = False if args.no_progress else None
    config = json.loads(json.dumps({"experiment": exp, "preset": args.preset, **asdict(cfg)}))
    variants, run_one = _grid(exp, cfg)
    runs, notes = run_grid(
        "lvm", config, variants, seeds, args.out, run_one, resume=args.resume, overwrite=args.overwrite,
        progress=progress,
    )  # fmt: skip
    for note in notes:
        print(note)
    metrics = {"experiment": exp, "preset": args.preset, "seeds": seeds, "config": config}
    metrics |= ANALYSES[exp](cfg, runs, seeds, args.out)
    write_json(metrics, args.out / "metrics.json")
    print(f"wrote {args.out / 'metrics.json'}")
    return exit_code(r for by_seed in runs.values() for r in by_seed.values())


def _grid(exp: str, cfg: Any):
    if exp == "order-selection":
        variants = [f"order{c}" for c in cfg.candidates]

        def run_one(variant: str, ctx: RunContext) -> dict[str, Any]:
            return order_selection.run_candidate(cfg, int(variant[5:]), ctx.seed, ctx.checkpoint, ctx.progress)

    elif exp == "error-model":
        variants = list(error_model.MODELS)

        def run_one(variant: str, ctx: RunContext) -> dict[str, Any]:
            return error_model.run_model(cfg, variant, ctx.seed, ctx.checkpoint, ctx.progress)

    else:
        variants = [f"{m}-N{n}" for m in cfg.methods for n in cfg.n_walkers]

        def run_one(variant: str, ctx: RunContext) -> dict[str, Any]:
            method, n = variant.rsplit("-N", 1)
            return logistic.run_one(cfg, method, int(n), ctx.seed, ctx.checkpoint, ctx.progress)

    return variants, run_one


def _order_selection(cfg, runs, seeds, out: Path) -> dict[str, Any]:
    rows = order_selection.table(order_selection.select(runs, cfg, seeds), cfg)
    checks = order_selection.coverage(runs, cfg, seeds)
    plots.order_selection_mae(rows, out / "mae.png")
    errors = {
        k: pooled_all(runs, cfg, seeds, key) - pooled_all(runs, cfg, seeds, "log_z_exact")
        for k, key in (("estimator population", "log_z_est"), ("coupled", "log_z_coupled"))
    }
    plots.evidence_errors(errors, out / "evidence_error.png", "every candidate fit at theta_K")
    plots.evidence_ratio(checks["by_order"], out / "evidence_ratio.png")
    cols = ("estimator", "coupled", "ml2", "bic")
    print("p*  d_y  " + "  ".join(f"{c:>13}" for c in cols) + "  paper JALA/BIC")
    for r in rows:
        vals = "  ".join(f"{r[f'mae_{c}']:.2f} +- {r[f'se_{c}']:.2f}" for c in cols)
        paper = f"{r['paper_jala_em']:.2f} / {r['paper_ols_bic']:.2f}" if "paper_jala_em" in r else ""
        print(f"{r['p_true']:>2}  {r['d_y']:>3}  {vals}  {paper}")
    print(f"evidence at theta_K within 3 SE of the closed form: {checks['within_3se']:.3f} of {checks['n_fits']} fits")
    for name in ("est", "coupled"):
        print(f"mean Z_hat / Z ({name}): {checks[f'ratio_{name}_mean']:.3f} +- {checks[f'ratio_{name}_se']:.3f}")
    return {"table": rows, "checks": checks}


def pooled_all(runs, cfg, seeds, key: str):
    """``key`` over every candidate and seed (order-selection), concatenated."""
    return torch.cat([pooled(runs[f"order{c}"], key, seeds) for c in cfg.candidates])


def _error_model(cfg, runs, seeds, out: Path) -> dict[str, Any]:
    picks = error_model.choices(runs, cfg, seeds)
    checks = error_model.evidence_checks(runs, seeds)
    truth = error_model.make_truth(cfg).repeat(len(seeds))
    gap = pooled(runs["student"], "log_z_est", seeds) - pooled(runs["gaussian"], "log_z_est", seeds)
    plots.error_model_gaps({"Gaussian": gap[truth == 0], "Student-t": gap[truth == 1]}, out / "evidence_gap.png")
    for k, v in picks.items():
        print(f"{k}: {v:.3f}")
    return {"choices": picks, "checks": checks}


def _logistic(cfg, runs, seeds, out: Path) -> dict[str, Any]:
    rows = logistic.summary(runs, cfg.theta_tol)
    plots.logistic_theta(runs, list(cfg.n_walkers), out / "theta_vs_time.png")
    plots.logistic_lppd(runs, out / "lppd.png")
    for r in rows:
        print(
            f"{r['variant']:>10}: theta {r['theta_final_mean']:.3f} +- {r['theta_final_sd']:.3f} "
            f"(|theta - consensus| {r['abs_dev_consensus_mean']:.3f}), "
            f"LPPD {r['lppd_mean']:.4f} +- {r['lppd_sd']:.4f}, CPU {r['cpu_time_s_mean']:.2f} s, "
            f"to within {cfg.theta_tol} of consensus {r['cpu_s_to_tol_median']:.2f} s"
        )
    return {"summary": rows}


ANALYSES = {"order-selection": _order_selection, "error-model": _error_model, "logistic": _logistic}
