"""Settings of the Gaussian-mixture study: the config and its presets, teacher, data and student, and the
command-line options that build a config (see :mod:`ebmlab.experiments.gmm`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..distributed import NOISE_MODES
from ..energies import GaussianMixture
from ..sampling.resampling import SCOPES
from ..training import negative_phase
from .study import add_device_arg, add_method_args, add_output_args, add_walker_args

DTYPE = torch.float64


@dataclass(frozen=True)
class GmmConfig:
    """Settings of one study (all methods and seeds share them)."""

    dim: int = 50
    left: float = -10.0  # position of the minority mode along e1
    right: float = 6.0
    left_mass: float = 0.25
    learn_means: bool = True
    n_data: int = 10_000
    n_walkers: int = 10_000
    step_size: float = 0.1
    iters: int = 8000
    lr_means: float = 0.0025
    lr_weights: float = 0.0125
    cd_lr_factor: float = 10.0
    cd_reset_every: int = 4
    resampler: str = "systematic"
    ess_threshold: float = 0.5
    resample_scope: str = "global"  # with several processes: "global" or "local" resampling
    noise: str = "replicated"  # with several processes: "replicated" (= 1 process) or "per-rank" streams
    log_z_walkers: int | None = None  # estimator population size M (None: N/4 for Jarzynski, 0 for PCD/CD)
    kernel: str = "ula"  # walker kernel: "ula" or "mala"
    cess_target: float | None = None  # ESS-controlled updates (Jarzynski only); None = off
    init_offset: float = 0.1  # student means start at -+ init_offset e1 + init_noise * N(0, I)
    init_noise: float = 0.01
    record_every: int = 20
    checkpoint_every: int = 500


PRESETS: dict[str, GmmConfig] = {
    "paper": GmmConfig(),
    "quick": GmmConfig(n_data=2000, n_walkers=2000, iters=2000),
    "tiny": GmmConfig(dim=5, n_data=200, n_walkers=200, iters=60, record_every=10, checkpoint_every=20),
}
ONE_D: dict[str, Any] = dict(dim=1, left=-12.0, right=9.0, left_mass=0.8, learn_means=False)
DEFAULT_SEEDS = {"paper": [0, 1, 2, 3, 4], "quick": [0, 1, 2], "tiny": [0]}


def teacher(cfg: GmmConfig) -> GaussianMixture:
    e1 = torch.zeros(cfg.dim, dtype=DTYPE)
    e1[0] = 1.0
    masses = torch.tensor([cfg.left_mass, 1 - cfg.left_mass], dtype=DTYPE)
    return GaussianMixture(torch.stack([cfg.left * e1, cfg.right * e1]), masses.log())


def make_data(cfg: GmmConfig, generator: torch.Generator) -> torch.Tensor:
    """n_data teacher draws with exactly floor(n * left_mass) in the left mode, (n, d)."""
    n_left = math.floor(cfg.n_data * cfg.left_mass)
    comp = torch.cat([torch.zeros(n_left, dtype=torch.long), torch.ones(cfg.n_data - n_left, dtype=torch.long)])
    return teacher(cfg).sample_components(comp, generator)


def student(cfg: GmmConfig, generator: torch.Generator) -> GaussianMixture:
    """Equal masses; means near the origin (or at the truth when means are not learned); b_0 frozen."""
    if cfg.learn_means:
        e1 = torch.zeros(cfg.dim, dtype=DTYPE)
        e1[0] = cfg.init_offset
        noise = torch.randn(2, cfg.dim, generator=generator, dtype=DTYPE)
        means = torch.stack([-e1, e1]) + cfg.init_noise * noise
    else:
        means = teacher(cfg).means.detach()
    return GaussianMixture(means, torch.zeros(2, dtype=DTYPE), frozen=[0], learn_means=cfg.learn_means)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick (default, minutes on a laptop), paper (the published settings), tiny (smoke test)",
    )
    add_method_args(p)
    p.add_argument(
        "--dim",
        type=int,
        default=None,
        help="dimension; 1 selects the one-dimensional study (modes -12 and 9, mass 0.8 left)",
    )
    p.add_argument("--walkers", type=int, default=None, help="number of walkers N")
    p.add_argument("--data", type=int, default=None, dest="n_data", help="number of data points n")
    p.add_argument("--iters", type=int, default=None, help="training iterations")
    p.add_argument("--step-size", type=float, default=None, help="ULA step size h")
    add_walker_args(p)
    p.add_argument(
        "--resample-scope",
        choices=SCOPES,
        default=None,
        help="under torchrun: resample the whole population (global, default) or each process's walkers",
    )
    p.add_argument(
        "--log-z-walkers",
        type=int,
        default=None,
        dest="log_z_walkers",
        help="estimator population size M, walkers that give log Z but never enter the gradient "
        "(default: N/4 for jarzynski, 0 for pcd/cd; 0 = off; a value applies to every method)",
    )
    p.add_argument(
        "--noise",
        choices=NOISE_MODES,
        default=None,
        help="under torchrun: draw the whole population's noise in every process (replicated, default: the "
        "1-process numbers) or per-rank counter-based streams (cheaper, reproducible for a given process count)",
    )
    add_device_arg(p)
    p.add_argument("--compile", action="store_true", help="run the walkers' Langevin steps compiled (torch.compile)")
    add_output_args(p, "runs/gmm")


def config_from_args(args: argparse.Namespace) -> GmmConfig:
    cfg = PRESETS[args.preset]
    if args.dim is not None:
        if args.dim < 1:
            raise ValueError(f"--dim must be >= 1, got {args.dim}")
        cfg = replace(cfg, **ONE_D) if args.dim == 1 else replace(cfg, dim=args.dim)
    overrides = {
        k: getattr(args, k)
        for k in (
            "n_data",
            "iters",
            "step_size",
            "resampler",
            "ess_threshold",
            "resample_scope",
            "noise",
            "log_z_walkers",
            "kernel",
            "cess_target",
        )
        if getattr(args, k) is not None
    }
    if args.walkers is not None:
        overrides["n_walkers"] = args.walkers
    cfg = replace(cfg, **overrides)
    if cfg.n_walkers < 2:
        raise ValueError(f"--walkers must be >= 2, got {cfg.n_walkers}")
    if cfg.iters < 1 or cfg.n_data < 2:
        raise ValueError("--iters must be >= 1 and --data >= 2")
    if cfg.log_z_walkers is not None and (cfg.log_z_walkers < 0 or cfg.log_z_walkers == 1):
        raise ValueError(f"--log-z-walkers must be 0 (off) or >= 2, got {cfg.log_z_walkers}")
    negative_phase(
        "jarzynski",
        step_size=cfg.step_size,
        resampler=cfg.resampler,
        ess_threshold=cfg.ess_threshold,
        kernel=cfg.kernel,
        cess_target=cfg.cess_target,
    )
    return cfg
