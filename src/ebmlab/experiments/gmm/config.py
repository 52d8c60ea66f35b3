"""Settings of the Gaussian-mixture study: the config and its presets, teacher, data and student (the options
that build a config from the command line are in :mod:`.cli`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ...energies import GaussianMixture

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
