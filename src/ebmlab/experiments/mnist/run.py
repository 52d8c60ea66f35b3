"""The imbalanced-digit study (Carbone et al. 2023, section 4): Jarzynski vs PCD vs CD on MNIST digits
2/3/6 in proportions 4:2:1, judged by the class masses of each method's model and of its walkers.

Data: a seeded split of one MNIST set (default the official test set) into disjoint parts
(:func:`ebmlab.data.subsets.imbalanced_digit_split`): 840 EBM training digits in exact 4:2:1 ratios,
420 held-out digits in the same ratios, and the rest of those digits (1740) to fit a classifier.

Spaces (``--space``):

- ``lda`` (default; the ``cpu`` preset is the 2-D study) and ``pca`` (``--dim``, 8 by default, label
  free): the digits projected to a few dimensions (:mod:`.lowdim`), an MLP energy with exact
  initial draws and log Z, class regions from an RBF SVC; model masses exactly by quadrature in 1-D
  and 2-D, and by AIS from the initial model in any dimension (a larger AIS run for the final model);
- ``pixels``: the paper's CNN energy on 28x28 images (:mod:`.pixels`), a CNN classifier,
  model masses from MALA chains at the current parameters.

Writes ``metrics.json``: per method and seed, at every evaluation, the walker class fractions
(weighted for Jarzynski) and the model class masses with their total-variation distances to 4:2:1,
log Z estimates (estimator population and, as ``*_coupled``, the gradient's walkers) and, in 2-D, the
exact log Z; final-model blocks (AIS; quadrature with its error); resamplings, wall and CPU time.
PNGs: :func:`plot_all`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ...data.digits8x8 import load_digits8x8
from ...data.mnist import load_mnist
from ...data.subsets import DigitSplit, imbalanced_digit_split
from ...distributed import LOCAL, Collective
from ...io import write_json
from ..study import RunContext, run_grid
from . import lowdim_plots, plots
from .config import (
    DIGITS,
    RATIOS,
    LowDimConfig,
    PixelConfig,
    StudyConfig,
)
from .eval import summarize
from .lowdim import LowDimStudy, lowdim_study
from .pixels import PixelStudy, pixel_study

Study = PixelStudy | LowDimStudy
# history key -> its mean over the run's updates, as recorded per run
HISTORY_MEANS = {
    "accept_rate": "accept_rate",
    "update_fraction": "mean_update_fraction",
    "ess_frac": "mean_ess_frac",
    "est_ess_frac": "mean_est_ess_frac",
    **{f"{p}inc_var{k}": f"mean_{p}inc_var{k}" for p in ("", "est_") for k in ("", "_param", "_kernel")},
}


def run_one(study: Study, method: str, ctx: RunContext) -> dict[str, Any]:
    """Train one (method, seed), continuing from ``ctx.checkpoint`` if it exists (a resumed run), and return its
    metrics (raises DivergenceError on blow-up).

    Evaluations happen when the iteration count is one less than a multiple of ``eval_every`` (so CD
    walkers are seen after 3 updates from data, not at a reset) and are stored in the trainer history,
    hence in checkpoints; the final-model blocks describe the parameters after the last iteration.
    ``wall_time_s`` and ``cpu_time_s`` cover this invocation (training, evaluations, final blocks).
    ``ctx.compile``: the walkers' Langevin steps run compiled (rounding only: not a recorded setting).
    """
    cfg, seed, ckpt, collective = study.cfg, ctx.seed, ctx.checkpoint, ctx.collective
    trainer = study.build_trainer(method, seed, collective)
    trainer.phase = replace(trainer.phase, move=replace(trainer.phase.move, compile=ctx.compile))
    if ckpt.exists():
        trainer.resume(ckpt)

    def record(tr, row: dict[str, Any]) -> None:
        if (tr.step_count + 1) % cfg.eval_every == 0:
            row["eval"] = study.evaluate(tr, seed)

    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.run(
        cfg.iters,
        checkpoint_path=ckpt,
        checkpoint_every=cfg.checkpoint_every,
        progress=ctx.progress,
        desc=f"{method} seed {seed}",
        callback=record,
    )
    stem = ckpt.parent.parent / "runs" / ckpt.stem  # <out>/runs/<method>_seed<seed>
    if collective.is_main:
        stem.parent.mkdir(parents=True, exist_ok=True)
    final = study.finish(trainer, seed, stem, write=collective.is_main)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    evals = [r["eval"] for r in trainer.history if "eval" in r]
    traj = {k: [e.get(k) for e in evals] for k in evals[0] if not k.startswith("log_z_unreliable_reason")}
    traj["resample_steps"] = [r["step"] for r in trainer.history if r["resampled"]]
    traj["estimator_resample_steps"] = [r["step"] for r in trainer.history if r.get("est_resampled")]
    rates = {
        name: sum(r[key] for r in trainer.history) / len(trainer.history)
        for key, name in HISTORY_MEANS.items()
        if key in trainer.history[0]
    }
    return {
        "status": "ok",
        **{k: v for k, v in evals[-1].items() if k != "step"},
        "final_step": evals[-1]["step"],
        "n_resamplings": len(traj["resample_steps"]),
        "n_estimator_resamplings": len(traj["estimator_resample_steps"]),
        **rates,
        "wall_time_s": wall,
        "cpu_time_s": cpu,
        "final": final,
        "trajectory": traj,
    }


def load_split(cfg: StudyConfig, data_dir: str | None) -> DigitSplit:
    """The study's data split: the 8x8 digits (``digits8x8``) or one MNIST set from ``data_dir``."""
    images: np.ndarray | torch.Tensor
    if cfg.space == "digits8x8":
        images, labels = load_digits8x8(cfg.split_seed)
    else:
        images, labels = load_mnist(data_dir, split=cfg.split)
    return imbalanced_digit_split(images, labels, DIGITS, RATIOS, cfg.ebm_unit, cfg.heldout_unit, cfg.split_seed)


def run_study(
    cfg: StudyConfig,
    methods: list[str],
    seeds: list[int],
    out: Path,
    data_dir: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
    collective: Collective = LOCAL,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    compile: bool = False,
) -> dict[str, Any]:
    """All (method, seed) runs on the study skeleton (:func:`~.study.run_grid`: ``--out`` rules,
    recorded settings, reuse of finished runs with ``resume``); writes metrics.json, the study's files
    (``classifier.pt`` or ``regions.pt``) and the plots; returns the metrics.

    Several processes may each run some seeds into one ``out`` (the later ones with ``resume``) and a
    last ``resume`` call assembles them.  With a distributed ``collective`` (pixel space only) every
    process runs this and only the main one writes files.  ``device``: where the pixel study's energy,
    walkers, data and classifier live (the projected spaces run on the CPU: :func:`study_device`);
    ``compile``: see :func:`run_one`.
    """
    if cfg.space != "pixels" and collective.world_size > 1:
        raise ValueError(
            f"--space {cfg.space} runs in one process (minutes on a CPU); use --space pixels under torchrun"
        )
    if not collective.is_main:
        progress = False
    split = load_split(cfg, data_dir)
    study: Study = (
        pixel_study(cfg, split, out, resume, progress, device)
        if isinstance(cfg, PixelConfig)
        else lowdim_study(cast(LowDimConfig, cfg), split)
    )
    config = json.loads(json.dumps(asdict(cfg)))  # as recorded in study.json (tuples become lists)
    runs, notes = run_grid(
        "mnist",
        config,
        methods,
        seeds,
        out,
        lambda method, ctx: run_one(study, method, ctx),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        collective=collective,
        compile=compile,
    )
    extra = {"temperature": cfg.temperature} if isinstance(cfg, PixelConfig) else {}
    metrics = {
        "config": config | extra,
        "space": cfg.space,
        "digits": list(DIGITS),
        "target_fractions": list(cfg.target_fractions),
        "methods": methods,
        "seeds": seeds,
        "data": {
            "ebm_class_counts": split.ebm.class_counts(len(DIGITS)),
            "heldout_class_counts": split.heldout.class_counts(len(DIGITS)),
            "classifier_class_counts": split.classifier.class_counts(len(DIGITS)),
        },
        "evaluation": study.info,
        "summary": summarize(runs),
        "notes": notes,
        "runs": runs,
    }
    if collective.is_main:
        study.save(out)
        write_json(metrics, out / "metrics.json")
        plot_all(metrics, out)
    return metrics


def plot_all(metrics: dict[str, Any], out: Path) -> None:
    """masses.png, tv.png, cross_entropy.png; pixels: samples.png, frechet.png; exact (1-D/2-D)
    projections: log_z.png and, in 2-D, density.png."""
    plots.plot_masses(metrics, out / "masses.png")
    plots.plot_tv(metrics, out / "tv.png")
    plots.plot_cross_entropy(metrics, out / "cross_entropy.png")
    if metrics["space"] == "pixels":
        plots.plot_samples(metrics, out)
        plots.plot_frechet(metrics, out / "frechet.png")
    elif "grid" in metrics["evaluation"]:
        lowdim_plots.plot_log_z(metrics, out / "log_z.png")
        if metrics["config"]["dim"] == 2:
            lowdim_plots.plot_density(metrics, out)
