"""The sweep: the imbalanced-digit study (:func:`ebmlab.experiments.mnist.run_study`, unchanged) at every
point, each in its own sub-directory of ``--out``, and one table of what each run says about its weights.

Per run (method, seed) at a point: the model's class-mass TV (quadrature in 2-D, else the tempered SMC of the
three-way check, with its verdict), the walker TV, resamplings per 100 updates of the gradient's walkers and
of the estimator population, their mean ESS/N, the estimator population's final log Z against the reference
(quadrature or tempered SMC) in combined standard errors, CPU time, and the mean per-update variance of the
log-weight increment split into its parameter-change and kernel parts.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...io import read_json, write_csv, write_json
from ...metrics.masses import total_variation
from ..mnist.config import LowDimConfig
from ..mnist.lowdim import lowdim_study
from ..mnist.run import load_split, run_study
from ..study import prepare_out, seed_summary
from . import plots
from .config import Mechanisms, point_config, point_name, points

SPLIT_KEYS = tuple(f"{p}inc_var{k}" for p in ("", "est_") for k in ("", "_param", "_kernel"))


def run_record(run: dict[str, Any], cfg: LowDimConfig) -> dict[str, Any]:
    """The sweep's fields of one finished run of the study at ``cfg`` (see the module docstring)."""
    iters = cfg.iters
    final = run["final"]
    rec: dict[str, Any] = {
        "walker_tv": run["walker_tv"],
        "resamplings_per_100": 100 * run["n_resamplings"] / iters,
        "estimator_resamplings_per_100": 100 * run["n_estimator_resamplings"] / iters,
        "mean_ess_frac": run.get("mean_ess_frac"),
        "mean_est_ess_frac": run.get("mean_est_ess_frac"),
        "cpu_time_s": run["cpu_time_s"],
        "cpu_time_per_update_ms": 1000 * run["cpu_time_s"] / iters,
        **{k: run.get(f"mean_{k}") for k in SPLIT_KEYS},
    }
    if cfg.exact:
        quad = final["quadrature"]
        rec |= {"model_masses": quad["masses"], "model_tv": total_variation(quad["masses"], cfg.target_fractions)}
        rec["tv_reliable"] = True
        rec |= {"mass_source": "quadrature", "reference_log_z": quad["log_z"], "reference_log_z_se": 0.0}
    else:
        check = final["checked"]
        smc = check["smc"]
        rec |= {
            "model_masses": smc["masses"],
            "model_masses_se": smc["masses_se"],
            "model_tv": check["tv"],
            "tv_reliable": check["tv_reliable"],
            "mass_source": "tempered SMC (checked)",
            "reference_log_z": smc["log_z"],
            "reference_log_z_se": smc["log_z_se"],
            "smc_ess_frac": smc["ess_frac"],
            "smc_ancestors": smc["ancestors"],
            "smc_far_mass": smc["far_mass"],
            "is_ess_frac": check["is"]["ess_frac"],
            "is_usable": check["is"]["usable"],
            "chain_acceptance": check["chains"]["acceptance"],
            "chains_usable": check["chains"].get("usable", True),
            "mass_z": dict(zip(check["pairs"], check["z"])),
            "unreliable_reasons": check.get("unreliable_reasons", []),
        }
    est = final.get("estimator_log_z")
    if est is not None:
        se = math.hypot(final["estimator_log_z_se"], rec["reference_log_z_se"])
        rec |= {"estimator_log_z": est, "estimator_log_z_se": final["estimator_log_z_se"]}
        rec["estimator_log_z_z"] = (est - rec["reference_log_z"]) / se if se > 0 else None
    return rec


def summarize_point(records: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method: the model TV's mean over the seeds whose masses passed the check (``model_tv_mean``, with
    ``n_reliable`` of ``n_seeds``; ``model_tv_all_mean`` over every finished seed), and the mean, min and max of
    every other numeric field over the finished seeds (:func:`~ebmlab.experiments.study.seed_summary`)."""
    out = {}
    for method, by_seed in records.items():
        ok = [r for r in by_seed.values() if r.get("status") == "ok"]
        keys = sorted({k for r in ok for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        good = [r["model_tv"] for r in ok if r["tv_reliable"]]
        s = seed_summary(ok, keys) | {"n_reliable": len(good), "n_diverged": len(by_seed) - len(ok)}
        s["model_tv_all_mean"] = s.get("model_tv_mean")
        s["model_tv_mean"] = sum(good) / len(good) if good else None
        out[method] = s
    return out


def recheck_point(cfg: LowDimConfig, sub: Path, methods: list[str], seeds: list[int], data_dir: str | None) -> int:
    """Measure the final models of the finished runs in ``sub`` again with the current three-way check, from
    their final checkpoints (training, its evaluations and its CPU time are kept as recorded); returns the
    number of runs rechecked."""
    if cfg.mass_check is None:
        return 0
    study, count = lowdim_study(cfg, load_split(cfg, data_dir)), 0
    for method in methods:
        for seed in seeds:
            done, ckpt = sub / "runs" / f"{method}_seed{seed}.json", sub / "checkpoints" / f"{method}_seed{seed}.pt"
            if not (done.exists() and ckpt.exists()):
                continue
            result = read_json(done, "run file")
            if result.get("status") != "ok":
                continue
            trainer = study.build_trainer(method, seed)
            trainer.resume(ckpt)
            result["final"]["checked"] = study.checked_masses(trainer, seed)
            write_json(result, done)
            count += 1
    return count


def run_sweep(
    preset: str,
    spaces: list[str],
    dims: list[int],
    methods: list[str],
    seeds: list[int],
    out: Path,
    *,
    mechanisms: Mechanisms | None = None,
    data_dir: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    recheck: bool = False,
) -> dict[str, Any]:
    """Run (or, with ``resume``, reuse) the study at every point into ``out/<point>/`` and write the sweep's
    ``metrics.json`` and plots into ``out``; several processes may each run some points into one ``out``
    (the later ones with ``resume``), and a last ``resume`` call with every point assembles them.  ``recheck``
    (with ``resume``): first measure every finished run's final model again (:func:`recheck_point`)."""
    if recheck and not resume:
        raise ValueError("--recheck measures the final models of finished runs again: it needs --resume")
    mechanisms = mechanisms or Mechanisms()
    grid = points(spaces, dims)
    recorded = {"preset": preset, "mechanisms": asdict(mechanisms)}  # the points may differ between calls
    if overwrite:
        for space, dim in grid:
            shutil.rmtree(out / point_name(space, dim), ignore_errors=True)
    notes = prepare_out(out, "scaling", recorded, resume, overwrite)
    results: dict[str, Any] = {}
    for space, dim in grid:
        cfg = point_config(preset, space, dim, mechanisms)
        sub = out / point_name(space, dim)
        if recheck:
            notes.append(
                f"{point_name(space, dim)}: rechecked {recheck_point(cfg, sub, methods, seeds, data_dir)} runs"
            )
        metrics = run_study(cfg, methods, seeds, sub, data_dir, resume=resume, progress=progress)
        records = {
            m: {s: ({"status": "ok"} | run_record(r, cfg)) if r["status"] == "ok" else r for s, r in by_seed.items()}
            for m, by_seed in metrics["runs"].items()
        }
        results[point_name(space, dim)] = {
            "space": space,
            "dim": dim,
            "config": json.loads(json.dumps(asdict(cfg))),
            "svc_heldout_accuracy": metrics["evaluation"]["svc_heldout_accuracy"],
            # the TV of the training digits' own SVC labels: the floor a perfect model reaches in this space
            "reference_tv": metrics["evaluation"]["reference"]["ebm_digits_tv"],
            "summary": summarize_point(records),
            "runs": records,
        }
        notes += metrics["notes"]
    sweep = {"preset": preset, "mechanisms": asdict(mechanisms), "methods": methods, "seeds": seeds}
    sweep |= {"points": results, "notes": notes}
    write_json(sweep, out / "metrics.json")
    write_csv(plots.table_rows(sweep), out / "summary.csv")
    plots.plot_tv_vs_dim(sweep, out / "tv_vs_dim.png")
    plots.plot_weights_vs_dim(sweep, out / "weights_vs_dim.png")
    return sweep


__all__ = ["run_record", "run_sweep", "summarize_point"]
