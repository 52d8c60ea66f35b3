"""``--experiment nce-gmm``: NCE training of the Gaussian-mixture study's student (Carbone et al.'s
GMM study, the teacher, data and student of :mod:`ebmlab.experiments.gmm`): mode masses and log Z
against the exact values."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ...estimators import GaussianNoise, nce_log_z
from ...training.nce import train_nce
from ..gmm.run import GmmConfig, left_index, make_data, student, teacher
from ..plotting import plt, save
from .targets import seeded


@dataclass(frozen=True)
class NceGmmConfig:
    """The GMM study's teacher/student (Carbone et al. 2023) trained by NCE against a fitted Gaussian."""

    dim: int = 50
    left: float = -10.0
    right: float = 6.0
    left_mass: float = 0.25
    n_data: int = 10_000
    nu: float = 1.0
    steps: int = 1500
    lr: float = 0.05
    noise_inflate: float = 1.0
    n_eval_noise: int = 100_000


def run_nce_gmm(cfg: NceGmmConfig, seed: int, progress: bool) -> dict[str, Any]:
    g = seeded(seed)
    study = GmmConfig(dim=cfg.dim, left=cfg.left, right=cfg.right, left_mass=cfg.left_mass, n_data=cfg.n_data)
    data = make_data(study, g)  # exactly floor(n / 4) points in the left mode
    model = student(study, g)  # equal masses, means near 0, first log-weight frozen (the gauge)
    noise = GaussianNoise.fit(data, cfg.noise_inflate)
    start = time.perf_counter()
    fit = train_nce(model, data, noise, generator=g, nu=cfg.nu, steps=cfg.steps, lr=cfg.lr, progress=progress)
    wall = time.perf_counter() - start
    with torch.no_grad():
        y = noise.sample(cfg.n_eval_noise, g)
        post = nce_log_z(-model(data), noise.log_prob(data), -model(y), noise.log_prob(y))
        masses = model.log_masses().exp()
        # the teacher in the student's gauge (first log-weight 0): its log Z shifted by -log(left mass)
        log_z_teacher = float(teacher(study).log_z()) - math.log(cfg.left_mass)
    left = left_index(model)
    return {
        "experiment": "nce-gmm",
        "seed": seed,
        "nce_config": asdict(cfg),  # "config" of a run file is the study's settings
        "mode_masses": {"left": float(masses[left]), "right": float(masses[1 - left])},
        "target_masses": {"left": cfg.left_mass, "right": 1 - cfg.left_mass},
        "means_e1": model.means[:, 0].tolist(),
        "log_z_learned": fit.log_z,
        "log_z_exact_student": float(model.log_z().detach()),
        "log_z_teacher": log_z_teacher,
        "log_z_posthoc_nce": float(post.log_z),
        "log_z_posthoc_nce_se": float(post.se),
        "wall_time_s": wall,
        "history": {"step": fit.steps, "loss": fit.loss, "log_z": fit.log_z_history},
    }


def plot_nce_gmm(res: dict[str, Any], out: Path, tag: str = "") -> list[Path]:
    h = res["history"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.plot(h["step"], h["loss"])
    a.set(xlabel="step", ylabel="NCE loss", yscale="log", title="NCE training (GMM study)")
    b.plot(h["step"], h["log_z"], label="learned log Z")
    b.axhline(res["log_z_exact_student"], color="k", ls="--", label="exact log Z (final student)")
    b.axhline(res["log_z_teacher"], color="tab:red", ls=":", label="teacher log Z")
    lo = min(res["log_z_teacher"], res["log_z_exact_student"]) - 2
    b.set(
        xlabel="step",
        ylabel="log Z (nats)",
        ylim=(lo, lo + 4),
        title=f"mode masses {res['mode_masses']['left']:.3f} / {res['mode_masses']['right']:.3f}",
    )
    b.legend(fontsize=8)
    path = out / f"nce_gmm{tag}.png"
    save(fig, path)
    return [path]
