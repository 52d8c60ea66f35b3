"""The imbalanced-digit study (Carbone et al. 2023, section 4): Jarzynski vs PCD vs CD on MNIST digits
2/3/6 in proportions 4:2:1, judged by the class masses of each method's model and of its walkers.

Data: a seeded split of one MNIST set (default the official test set) into disjoint parts
(:func:`ebmlab.data.subsets.imbalanced_digit_split`): 840 EBM training digits in exact 4:2:1 ratios,
420 held-out digits in the same ratios, and the rest of those digits (1740) to fit a classifier.

Spaces (``--space``):

- ``lda`` (default; the ``cpu`` preset is the 2-D study) and ``pca`` (``--dim``, 8 by default, label
  free): the digits projected to a few dimensions (:mod:`.mnist_lowdim`), an MLP energy with exact
  initial draws and log Z, class regions from an RBF SVC; model masses exactly by quadrature in 1-D
  and 2-D, and by AIS from the initial model in any dimension (a larger AIS run for the final model);
- ``pixels``: the paper's CNN energy on 28x28 images (:mod:`.mnist_pixels`), a CNN classifier,
  model masses from MALA chains at the current parameters.

Writes ``metrics.json``: per method and seed, at every evaluation, the walker class fractions
(weighted for Jarzynski) and the model class masses with their total-variation distances to 4:2:1,
log Z estimates (estimator population and, as ``*_coupled``, the gradient's walkers) and, in 2-D, the
exact log Z; final-model blocks (AIS; quadrature with its error); resamplings, wall and CPU time.
PNGs: :func:`plot_all`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..data.digits8x8 import load_digits8x8
from ..data.mnist import load_mnist
from ..data.projection import SPACES
from ..data.subsets import DigitSplit, imbalanced_digit_split
from ..distributed import LOCAL, Collective
from ..io import write_json
from . import mnist_lowdim_plots, mnist_plots
from .mnist_config import (
    DEFAULT_SPACE,
    DIGITS,
    PRESETS,
    RATIOS,
    LowDimConfig,
    PixelConfig,
    StudyConfig,
    default_seeds,
    preset,
    study_device,
)
from .mnist_eval import summarize
from .mnist_lowdim import LowDimStudy, lowdim_study
from .mnist_pixels import PixelStudy, pixel_study
from .reliability import reliability_warnings
from .study import (
    add_device_arg,
    add_method_args,
    add_output_args,
    add_walker_args,
    exit_code,
    run_grid,
)

Study = PixelStudy | LowDimStudy
# history key -> its mean over the run's updates, as recorded per run
HISTORY_MEANS = {
    "accept_rate": "accept_rate",
    "update_fraction": "mean_update_fraction",
    "ess_frac": "mean_ess_frac",
    "est_ess_frac": "mean_est_ess_frac",
    **{f"{p}inc_var{k}": f"mean_{p}inc_var{k}" for p in ("", "est_") for k in ("", "_param", "_kernel")},
}


def run_one(
    study: Study, method: str, seed: int, ckpt: Path, progress: bool | None, collective: Collective, compile: bool
) -> dict[str, Any]:
    """Train one (method, seed), continuing from ``ckpt`` if it exists (a resumed run), and return its
    metrics (raises DivergenceError on blow-up).

    Evaluations happen when the iteration count is one less than a multiple of ``eval_every`` (so CD
    walkers are seen after 3 updates from data, not at a reset) and are stored in the trainer history,
    hence in checkpoints; the final-model blocks describe the parameters after the last iteration.
    ``wall_time_s`` and ``cpu_time_s`` cover this invocation (training, evaluations, final blocks).
    ``compile``: the walkers' Langevin steps run compiled (rounding only: not a recorded setting).
    """
    cfg = study.cfg
    trainer = study.build_trainer(method, seed, collective)
    trainer.phase = replace(trainer.phase, compile=compile)
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
        progress=progress,
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
        lambda method, seed, ckpt: run_one(study, method, seed, ckpt, progress, collective, compile),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        collective=collective,
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
    mnist_plots.plot_masses(metrics, out / "masses.png")
    mnist_plots.plot_tv(metrics, out / "tv.png")
    mnist_plots.plot_cross_entropy(metrics, out / "cross_entropy.png")
    if metrics["space"] == "pixels":
        mnist_plots.plot_samples(metrics, out)
        mnist_plots.plot_frechet(metrics, out / "frechet.png")
    elif "grid" in metrics["evaluation"]:
        mnist_lowdim_plots.plot_log_z(metrics, out / "log_z.png")
        if metrics["config"]["dim"] == 2:
            mnist_lowdim_plots.plot_density(metrics, out)


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
