"""The imbalanced-MNIST study (Carbone et al. 2023, section 4): Jarzynski vs PCD vs CD on digits
2/3/6 in proportions 4:2:1.

Data: a seeded split of one MNIST set (default the official test set) into disjoint parts
(:func:`ebmlab.data.subsets.imbalanced_digit_split`): EBM training images in exact 4:2:1 ratios,
held-out real images in the same ratios, and the rest of those digits for a 3-class classifier.
The classifier (trained once per study, saved as ``classifier.pt``) labels the walkers; its
penultimate features give a Frechet distance between walkers and held-out images.

Model: the CNN energy of the science note, U_theta(x) for pixels in [-1, 1], plus a fixed soft
wall (kappa/2) sum_p relu(|x_p| - 1)^2 that keeps walkers near the pixel box (a differentiable
stand-in for the paper's per-pixel rejection, which would break the weights' exactness).  The
walkers move with drift step h and noise std sigma; we declare the sampled density
rho_theta ~ exp(-U_theta / T), T = sigma^2 / (2h) (pitfall (b) of the note), so that the ULA kernel,
its density in the weights and the target are consistent and the Jarzynski weights are exact.
Energies, log Z and cross-entropy are therefore reported in units of V = U / T (nats).

Jarzynski walkers start uniform on [-1, 1]^784 followed by ``init_steps`` unweighted ULA steps at
theta_0; log Z_0 is an importance-sampling estimate over uniform draws of the box-restricted
integral (inexact, as in the paper; only changes of the cross-entropy are meaningful).  PCD and CD
walkers start at data; CD resets them to data every 4 iterations.  Mini-batched walkers: each update
moves ``walker_batch`` walkers by ``steps_per_update`` ULA steps and uses them (weights renormalised
within the subset) in the loss; the others get the AIS increment.

Writes ``metrics.json`` (per method and seed, over training: walker class fractions -- weighted for
Jarzynski --, total-variation distance to 4:2:1, estimated cross-entropy, ESS/N, feature Frechet
distance), the classifier and PNGs (sample grids, class fractions, TV and cross-entropy vs step).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.mnist import load_mnist
from ..data.subsets import DigitSplit, imbalanced_digit_split
from ..distributed import LOCAL, Collective
from ..energies.networks import ConvEnergy
from ..metrics.classifier import (
    DigitClassifier,
    accuracy,
    apply_batched,
    class_fractions,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from ..metrics.frechet import frechet_from_moments, gaussian_moments
from ..sampling.langevin import init_state, ula
from ..sampling.resampling import RESAMPLERS, systematic
from ..sampling.walkers import Walkers, log_z_estimate, normalized_weights
from ..training import METHODS, Trainer, negative_phase
from .common import exit_code, int_list, name_list, run_or_reuse, seed_summary, write_json
from .mnist_plots import plot_all

DIGITS = (2, 3, 6)
RATIOS = (4, 2, 1)
GRID = 64  # walkers shown per sample grid


@dataclass(frozen=True)
class MnistConfig:
    """Settings of one study (shared by all methods and seeds).  Units: pixels in [-1, 1]; h and
    kappa act on U (drift h * grad U); T = noise_std^2 / (2 step_size)."""

    split: str = "test"  # MNIST split the images come from
    ebm_unit: int = 120  # EBM images per digit = ratio * unit (480/240/120)
    heldout_unit: int = 60  # held-out images per digit = ratio * unit (240/120/60)
    split_seed: int = 0
    classifier_epochs: int = 10
    channels: int = 16  # ConvEnergy width (16 = the paper's)
    n_walkers: int = 512
    walker_batch: int = 128
    steps_per_update: int = 10
    step_size: float = 0.1
    noise_std: float = 0.1  # T = 0.05: weights stay usable over the run (docs/mnist.md)
    wall: float = 0.5  # kappa of the soft pixel-box wall, in U units; keep step_size * wall <= ~0.05
    init_steps: int = 30  # unweighted ULA steps at theta_0 after the uniform draw (Jarzynski)
    iters: int = 1000
    data_batch: int = 128
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.999
    final_lr_factor: float = 0.01  # linear decay of the learning rate to this fraction at the end
    grad_clip: float = 1.0  # on the gradient of the loss in U units
    energy_reg: float = 1e-2  # alpha of alpha * (E_data[U^2] + E_w[U^2]), U units
    resampler: str = "systematic"
    ess_threshold: float = 0.5
    cd_reset_every: int = 4
    eval_every: int = 40
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if not (self.step_size > 0 and self.noise_std > 0):
            raise ValueError(f"need step_size > 0 and noise_std > 0, got {self.step_size}, {self.noise_std}")
        if self.step_size * self.wall >= 1.0:
            raise ValueError(
                f"step_size * wall = {self.step_size * self.wall:g} >= 1: ULA on the pixel wall is "
                "too coarse and the Jarzynski weights collapse even at fixed parameters; lower wall "
                "or step_size (the presets keep the product at 0.05)"
            )

    @property
    def temperature(self) -> float:
        return self.noise_std**2 / (2.0 * self.step_size)

    @property
    def target_fractions(self) -> tuple[float, ...]:
        return tuple(r / sum(RATIOS) for r in RATIOS)


PRESETS: dict[str, MnistConfig] = {
    # smoke run for tests: tiny populations and chains, a 2-epoch classifier
    "quick": MnistConfig(
        classifier_epochs=2,
        channels=8,
        n_walkers=64,
        walker_batch=32,
        steps_per_update=2,
        init_steps=5,
        iters=24,
        data_batch=64,
        eval_every=8,
        checkpoint_every=8,
    ),
    # the study scaled to ~10 minutes per method and seed on one CPU core
    "cpu": MnistConfig(),
    # the paper's settings (section 4 of the note) for a GPU; 600 epochs of 9 800 images / 128
    "paper": MnistConfig(
        n_walkers=1024,
        walker_batch=256,
        steps_per_update=30,
        step_size=5e-5,
        noise_std=1e-4,
        wall=1e3,
        init_steps=20_000,
        iters=46_000,
        lr=1e-4,
        final_lr_factor=1e-3,
        eval_every=400,
        checkpoint_every=2000,
    ),
}
DEFAULT_SEEDS = {"quick": [0], "cpu": [0, 1, 2], "paper": [0, 1, 2]}


class BoxedTemperedEnergy(nn.Module):
    """V(x) = (U_net(x) + (kappa/2) sum_p relu(|x_p| - 1)^2) / T for images (N, 1, 28, 28); returns (N,)."""

    def __init__(self, net: nn.Module, temperature: float, wall: float):
        super().__init__()
        if not temperature > 0 or wall < 0:
            raise ValueError(f"need temperature > 0 and wall >= 0, got {temperature}, {wall}")
        self.net, self.temperature, self.wall = net, float(temperature), float(wall)

    def base_energy(self, x: Tensor) -> Tensor:
        """U(x) in U units (network plus wall), (N,)."""
        outside = torch.relu(x.abs() - 1.0).flatten(1)
        return self.net(x) + 0.5 * self.wall * outside.square().sum(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.base_energy(x) / self.temperature


def make_energy(cfg: MnistConfig, seed: int) -> BoxedTemperedEnergy:
    """The CNN energy with weights drawn from ``seed`` (global torch RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvEnergy(cfg.channels)
    return BoxedTemperedEnergy(net, cfg.temperature, cfg.wall)


def uniform_init_sampler(energy: nn.Module, cfg: MnistConfig):
    """init_sampler(n, generator): uniform on [-1, 1]^784, then ``cfg.init_steps`` unweighted ULA steps
    at the initial parameters (an approximation of draws from rho_theta_0, as in the paper)."""

    def sample(n: int, generator: torch.Generator) -> Tensor:
        x = torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1
        state = init_state(energy, x)
        for _ in range(cfg.init_steps):
            state, _ = ula(state, energy, cfg.noise_std**2 / 2, generator)
        return state.x

    return sample


@torch.no_grad()
def uniform_log_z0(energy: nn.Module, n: int, generator: torch.Generator) -> float:
    """log of the importance-sampling estimate 2^784 mean_i exp(-V(u_i)), u_i uniform on the box:
    the box-restricted log Z of the initial model (only CE changes are meaningful)."""
    u = torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1
    v = apply_batched(energy, u, 256).double()
    return float(784 * math.log(2.0) + torch.logsumexp(-v, 0) - math.log(n))


def build_trainer(cfg: MnistConfig, method: str, seed: int, data: Tensor, collective: Collective = LOCAL) -> Trainer:
    """Energy, Adam (betas, linear lr decay, clip) and the method's negative phase, as one Trainer."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    energy = make_energy(cfg, seed)
    gen = torch.Generator().manual_seed(seed)
    overrides: dict[str, Any] = dict(
        step_size=cfg.noise_std**2 / 2, steps_per_update=cfg.steps_per_update, walker_batch=cfg.walker_batch
    )  # V units: noise sqrt(2 h_V) = noise_std
    if method == "jarzynski":
        overrides.update(resampler=cfg.resampler, ess_threshold=cfg.ess_threshold)
    if method == "cd":
        overrides["reset_every"] = cfg.cd_reset_every
    phase = negative_phase(method, **overrides)
    opt = torch.optim.Adam(energy.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, cfg.final_lr_factor, total_iters=cfg.iters)
    init = uniform_init_sampler(energy, cfg) if method == "jarzynski" else None
    log_z0 = uniform_log_z0(energy, cfg.n_walkers, gen) if method == "jarzynski" else None
    t = cfg.temperature  # the loss is in V = U/T: scale alpha and the clip so they act as in U units
    return Trainer(
        energy,
        data,
        opt,
        phase,
        n_walkers=cfg.n_walkers,
        generator=gen,
        init_sampler=init,
        log_z0=log_z0,
        data_batch=cfg.data_batch,
        energy_reg=cfg.energy_reg * t,
        grad_clip=cfg.grad_clip / t,
        scheduler=sched,
        collective=collective,
    )


def walker_weights(walkers: Walkers, weighted: bool) -> Tensor:
    """Normalised weights (N,) float64: softmax(A) for weighted walkers, 1/N otherwise."""
    return normalized_weights(walkers.log_w) if weighted else torch.full_like(walkers.log_w, 1.0 / walkers.n)


def weighted_moments(feats: Tensor, w: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean (D,) and covariance (D, D) of features (N, D) under normalised weights w (N,)."""
    f, w = feats.double(), w.double()
    mu = w @ f
    c = f - mu
    return mu.numpy(), (c.T @ (w[:, None] * c) / (1.0 - (w * w).sum()).clamp_min(1e-12)).numpy()


@dataclass
class Evaluator:
    """Labels and features of walkers against the held-out reference (see :meth:`__call__`)."""

    classifier: DigitClassifier
    ebm_images: Tensor
    heldout_moments: tuple[np.ndarray, np.ndarray]
    target: tuple[float, ...]

    @torch.no_grad()
    def __call__(self, trainer: Trainer) -> dict[str, Any]:
        """Class fractions (weighted for Jarzynski), TV to the target, feature Frechet distance to the
        held-out images (weighted moments), ESS/N and, for weighted walkers, log Z and CE estimates.
        Under torchrun every process evaluates the gathered population (a collective call)."""
        walkers = trainer.population()
        x, w = walkers.x, walker_weights(walkers, trainer.phase.weighted)
        frac = class_fractions(predict(self.classifier, x), len(self.target), w)
        tv = 0.5 * float((frac - torch.tensor(self.target, dtype=torch.float64)).abs().sum())
        feats = apply_batched(self.classifier.features, x)
        out = {
            "step": trainer.step_count,
            "fractions": frac.tolist(),
            "tv": tv,
            "frechet": frechet_from_moments(*weighted_moments(feats, w), *self.heldout_moments),
            "ess_frac": float(1.0 / (w * w).sum() / w.numel()),
        }
        if trainer.phase.weighted:
            log_z = float(log_z_estimate(walkers))
            mean_v = float(apply_batched(trainer.energy, self.ebm_images, 256).double().mean())
            out.update(log_z_est=log_z, ce_est=mean_v + log_z)
        return out


def sample_grid_images(trainer: Trainer, n: int = GRID) -> Tensor:
    """n walkers (n, 1, 28, 28) to show: drawn by weight (systematic resampling) for Jarzynski,
    the first n otherwise (a collective call under torchrun)."""
    walkers = trainer.population()
    if trainer.phase.weighted:
        idx = systematic(walker_weights(walkers, True), n, torch.Generator().manual_seed(0))
        return walkers.x[idx].clone()
    return walkers.x[:n].clone()


def run_one(
    cfg: MnistConfig,
    method: str,
    seed: int,
    split: DigitSplit,
    evaluator: Evaluator,
    out: Path,
    resume: bool,
    progress: bool | None,
    collective: Collective = LOCAL,
) -> dict[str, Any]:
    """Train one (method, seed) and return its metrics (raises DivergenceError on blow-up).

    Evaluations happen when the iteration count is one less than a multiple of ``eval_every`` (so CD
    walkers are seen after 3 updates from data, not at a reset) and are stored in the trainer history,
    hence in checkpoints.
    """
    trainer = build_trainer(cfg, method, seed, split.ebm.images, collective)
    ckpt = out / "checkpoints" / f"{method}_seed{seed}.pt"
    if resume and ckpt.exists():
        trainer.resume(ckpt)

    def record(tr: Trainer, row: dict[str, Any]) -> None:
        if (tr.step_count + 1) % cfg.eval_every == 0:
            row["eval"] = evaluator(tr)

    start = time.perf_counter()
    trainer.run(
        cfg.iters,
        checkpoint_path=ckpt,
        checkpoint_every=cfg.checkpoint_every,
        progress=progress,
        desc=f"{method} seed {seed}",
        callback=record,
    )
    wall = time.perf_counter() - start
    evals = [r["eval"] for r in trainer.history if "eval" in r]
    if not evals:
        raise ValueError(f"no evaluation happened: iters={cfg.iters} < eval_every - 1={cfg.eval_every - 1}")
    grid = sample_grid_images(trainer)
    if collective.is_main:
        torch.save(grid, out / "runs" / f"{method}_seed{seed}_samples.pt")
    final = evals[-1]
    traj = {k: [e[k] for e in evals] for k in evals[0]}
    traj["resample_steps"] = [r["step"] for r in trainer.history if r["resampled"]]
    return {
        "status": "ok",
        **{k: v for k, v in final.items() if k != "step"},
        "final_step": final["step"],
        "n_resamplings": len(traj["resample_steps"]),
        "wall_time_s": wall,
        "trajectory": traj,
    }


def get_classifier(
    cfg: MnistConfig, split: DigitSplit, out: Path, resume: bool, progress: bool | None, write: bool = True
) -> tuple[DigitClassifier, dict[str, Any]]:
    """Train (or, with resume, reload) the 3-class classifier and save it (``write``); report its held-out
    accuracy.  Training is seeded, so every process of a torchrun job trains the same classifier."""
    path = out / "classifier.pt"
    start = time.perf_counter()
    if resume and path.exists():
        model = load_classifier(path)
    else:
        model = train_classifier(
            split.classifier.images,
            split.classifier.labels,
            len(DIGITS),
            epochs=cfg.classifier_epochs,
            seed=cfg.split_seed,
            progress=progress,
        )
        if write:
            save_classifier(model, path)
    info = {
        "heldout_accuracy": accuracy(model, split.heldout.images, split.heldout.labels),
        "n_train": len(split.classifier),
        "n_heldout": len(split.heldout),
        "train_class_counts": split.classifier.class_counts(len(DIGITS)),
        "epochs": cfg.classifier_epochs,
        "time_s": time.perf_counter() - start,
        "path": path.name,
    }
    return model, info


def make_evaluator(classifier: DigitClassifier, split: DigitSplit, target: tuple[float, ...]) -> Evaluator:
    feats = apply_batched(classifier.features, split.heldout.images)
    return Evaluator(classifier, split.ebm.images, gaussian_moments(feats), target)


def references(evaluator: Evaluator, split: DigitSplit) -> dict[str, Any]:
    """Floors for the walker metrics: the same metrics on real EBM training images (classifier
    fractions and TV of real 4:2:1 images; Frechet distance between two real sets)."""
    clf, target = evaluator.classifier, evaluator.target
    frac = class_fractions(predict(clf, split.ebm.images), len(target))
    feats = apply_batched(clf.features, split.ebm.images)
    return {
        "ebm_images_fractions": frac.tolist(),
        "ebm_images_tv": 0.5 * float((frac - torch.tensor(target, dtype=torch.float64)).abs().sum()),
        "ebm_images_frechet": frechet_from_moments(*gaussian_moments(feats), *evaluator.heldout_moments),
    }


SUMMARY_KEYS = ("tv", "frechet", "ce_est", "ess_frac", "n_resamplings", "wall_time_s")


def summarize(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method: mean / min / max over seeds of the final TV, Frechet distance and wall time, and the
    mean class fractions."""
    out = {}
    for method, by_seed in runs.items():
        ok = [r for r in by_seed.values() if r.get("status") == "ok"]
        if ok:
            out[method] = seed_summary(ok, SUMMARY_KEYS) | {
                "fractions_mean": np.mean([r["fractions"] for r in ok], axis=0).tolist()
            }
    return out


def run_study(
    cfg: MnistConfig,
    methods: list[str],
    seeds: list[int],
    out: Path,
    data_dir: str | None = None,
    resume: bool = False,
    progress: bool | None = None,
    collective: Collective = LOCAL,
) -> dict[str, Any]:
    """All (method, seed) runs; writes metrics.json and the plots; returns the metrics.

    Finished runs (``runs/<method>_seed<seed>.json``) found in ``out`` are reused with ``resume``, and
    the report covers every finished run of the requested methods and seeds, so several processes
    may each run some methods into one ``out`` and a last ``--resume`` call assembles them.  With a
    distributed ``collective`` every process runs this and only the main one writes files.
    """
    main_process = collective.is_main
    if main_process:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    else:
        progress = False
    images, labels = load_mnist(data_dir, split=cfg.split)
    split = imbalanced_digit_split(images, labels, DIGITS, RATIOS, cfg.ebm_unit, cfg.heldout_unit, cfg.split_seed)
    classifier, clf_info = get_classifier(cfg, split, out, resume, progress, write=main_process)
    evaluator = make_evaluator(classifier, split, cfg.target_fractions)
    runs: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for method in methods:
        for seed in seeds:
            runs[method][str(seed)] = run_or_reuse(
                out / "runs" / f"{method}_seed{seed}.json",
                lambda: run_one(cfg, method, seed, split, evaluator, out, resume, progress, collective),  # noqa: B023 - called at once
                resume,
                f"{method} seed {seed}",
                write=main_process,
            )
    metrics = {
        "config": asdict(cfg) | {"temperature": cfg.temperature},
        "digits": list(DIGITS),
        "target_fractions": list(cfg.target_fractions),
        "methods": methods,
        "seeds": seeds,
        "data": {
            "ebm_class_counts": split.ebm.class_counts(3),
            "heldout_class_counts": split.heldout.class_counts(3),
            "classifier_class_counts": split.classifier.class_counts(3),
        },
        "classifier": clf_info,
        "reference": references(evaluator, split),
        "summary": summarize(runs),
        "runs": runs,
    }
    if main_process:
        write_json(metrics, out / "metrics.json")
        plot_all(metrics, out)
    return metrics


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="cpu",
        help="quick (smoke test, < 2 min), cpu (default; ~10 min per method and seed on one core), "
        "paper (the published settings, for a GPU)",
    )
    p.add_argument(
        "--methods",
        type=name_list(METHODS),
        default=list(METHODS),
        help="comma-separated subset of " + ",".join(METHODS),
    )
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: preset's)")
    p.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files (default: $EBMLAB_DATA)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (override the preset)")
    p.add_argument("--walkers", type=int, default=None, help="number of walkers N (override the preset)")
    p.add_argument("--resampler", choices=sorted(RESAMPLERS), default=None)
    p.add_argument("--ess-threshold", type=float, default=None, help="resample when ESS/N < this, in (0, 1]")
    p.add_argument("--out", type=Path, default=Path("runs/mnist"), help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints and finished runs in --out")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def config_from_args(args: argparse.Namespace) -> MnistConfig:
    cfg = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("iters", "resampler", "ess_threshold") if getattr(args, k) is not None}
    if args.walkers is not None:
        overrides["n_walkers"] = args.walkers
        overrides["walker_batch"] = min(cfg.walker_batch, args.walkers)
    cfg = replace(cfg, **overrides)
    if cfg.n_walkers < 2 or cfg.iters < cfg.eval_every:
        raise ValueError(
            f"need --walkers >= 2 and --iters >= eval_every ({cfg.eval_every}); got {cfg.n_walkers}, {cfg.iters}"
        )
    negative_phase("jarzynski", resampler=cfg.resampler, ess_threshold=cfg.ess_threshold)
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
        data_dir=args.data_dir,
        resume=args.resume,
        progress=False if args.no_progress else None,
        collective=coll,
    )
    if not coll.is_main:
        return 0
    print(f"classifier held-out accuracy {metrics['classifier']['heldout_accuracy']:.4f}")
    for method, s in metrics["summary"].items():
        print(
            f"{method:>10}: TV to 4:2:1 {s['tv_mean']:.3f} [{s['tv_min']:.3f}, {s['tv_max']:.3f}], "
            f"Frechet {s['frechet_mean']:.2f}, {s['wall_time_s_mean']:.0f} s/run ({s['n_seeds']} seeds)"
        )
    print(f"wrote {args.out / 'metrics.json'} and plots")
    return exit_code(r for by_seed in metrics["runs"].values() for r in by_seed.values())
