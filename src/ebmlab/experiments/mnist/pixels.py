"""The imbalanced-digit study on pixels (Carbone et al. 2023, section 4): CNN energy, CNN classifier.

Model: the CNN energy of Carbone et al. (2023)'s MNIST code, U_theta(x) for pixels in [-1, 1], plus a fixed soft wall
(:class:`~ebmlab.energies.BoxedTemperedEnergy`).  Walkers move with drift step h and noise std
sigma, and the sampled density is declared rho_theta ~ exp(-U_theta / T), T = sigma^2 / (2h)
(pitfall (b) of the note), so kernel, weights and target agree; energies, log Z and cross-entropy
are reported in units of V = U / T (nats).  Jarzynski walkers start uniform on [-1, 1]^784 followed
by ``init_steps`` unweighted ULA steps at theta_0; log Z_0 is an importance-sampling estimate of the
box-restricted integral (only changes of the cross-entropy are meaningful).  Mini-batched walkers:
each update moves ``walker_batch`` walkers by ``steps_per_update`` ULA steps; the others get the AIS
increment.

A 3-class CNN classifier (trained once per study, ``classifier.pt``) labels the walkers; its
penultimate features give a Frechet distance to held-out images.  The model's own class masses come
from independent MALA chains at the current parameters, started uniform on the box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...data.subsets import DigitSplit
from ...distributed import LOCAL, Collective
from ...energies import BoxedTemperedEnergy, ConvEnergy, box_log_z
from ...io import save_torch
from ...metrics.classifier import (
    DigitClassifier,
    accuracy,
    apply_batched,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
)
from ...metrics.frechet import frechet_from_moments, gaussian_moments
from ...metrics.masses import mala_chain_ends, total_variation
from ...sampling.langevin import init_state, ula
from ...sampling.resampling import systematic
from ...sampling.walkers import normalized_weights
from ...training import Trainer
from ..study import eval_generator
from .config import DIGITS, PixelConfig
from .eval import estimates, mass_fields, walker_log_weights

GRID = 64  # walkers shown per sample grid
EVENT = (1, 28, 28)


def make_energy(cfg: PixelConfig, seed: int) -> BoxedTemperedEnergy:
    """The CNN energy with weights drawn from ``seed`` (global torch RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvEnergy(cfg.channels)
    return BoxedTemperedEnergy(net, cfg.temperature, cfg.wall)


def uniform_init_sampler(energy: BoxedTemperedEnergy, cfg: PixelConfig):
    """init_sampler(n, generator): uniform on [-1, 1]^784, then ``cfg.init_steps`` unweighted ULA steps
    at the initial parameters (an approximation of draws from rho_theta_0, as in the paper)."""

    def sample(n: int, generator: torch.Generator) -> Tensor:
        state = init_state(energy, torch.rand(n, *EVENT, generator=generator, device=generator.device) * 2 - 1)
        for _ in range(cfg.init_steps):
            state, _ = ula(state, energy, cfg.noise_std**2 / 2, generator, weighted=False)
        return state.x

    return sample


def build_trainer(
    cfg: PixelConfig,
    method: str,
    seed: int,
    data: Tensor,
    collective: Collective = LOCAL,
    device: str | torch.device = "cpu",
) -> Trainer:
    """Energy, Adam (betas, linear lr decay, clip) and the method's negative phase, as one Trainer; the
    energy, data, walkers and generator on ``device``."""
    energy = make_energy(cfg, seed).to(device)
    gen = torch.Generator(device).manual_seed(seed)
    data = data.to(device)
    # V units: drift step noise_std^2 / 2, so the noise sqrt(2 h_V) is noise_std
    phase = cfg.negative_phase(method, cfg.noise_std**2 / 2, walker_batch=cfg.walker_batch)
    opt = torch.optim.Adam(energy.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, cfg.final_lr_factor, total_iters=cfg.iters)
    from_model = method == "jarzynski" or cfg.log_z_walkers > 0
    t = cfg.temperature  # the loss is in V = U/T: scale alpha and the clip so they act as in U units
    return Trainer(
        energy,
        data,
        opt,
        phase,
        n_walkers=cfg.n_walkers,
        generator=gen,
        init_sampler=uniform_init_sampler(energy, cfg) if from_model else None,
        log_z0=float(box_log_z(energy, EVENT, cfg.n_walkers, gen).log_z) if from_model else None,
        log_z_walkers=cfg.log_z_walkers,
        data_batch=cfg.data_batch,
        energy_reg=cfg.energy_reg * t,
        grad_clip=cfg.grad_clip / t,
        scheduler=sched,
        collective=collective,
        **cfg.trainer_options(method),
    )


@dataclass
class PixelStudy:
    """The pixel space of one study: classifier, held-out reference and per-run evaluation."""

    cfg: PixelConfig
    split: DigitSplit
    classifier: DigitClassifier
    heldout_moments: tuple[np.ndarray, np.ndarray]
    info: dict[str, Any]
    device: torch.device

    def build_trainer(self, method: str, seed: int, collective: Collective = LOCAL) -> Trainer:
        return build_trainer(self.cfg, method, seed, self.split.ebm.images, collective, self.device)

    def save(self, out: Path) -> None:
        """``classifier.pt`` (reloaded by ``--resume``)."""
        save_classifier(self.classifier, out / "classifier.pt")

    def _labels(self, x: Tensor) -> Tensor:
        return predict(self.classifier, x)

    @torch.no_grad()
    def evaluate(self, trainer: Trainer, seed: int) -> dict[str, Any]:
        """Walker class fractions (weighted for Jarzynski) and feature Frechet distance to the held-out
        images; the model's class masses from MALA chains; ESS/N and log Z estimates.  Under torchrun
        every process evaluates the gathered population (a collective call)."""
        cfg, target = self.cfg, self.cfg.target_fractions
        walkers = trainer.population()
        log_w = walker_log_weights(walkers, trainer.phase.weighted)
        w = normalized_weights(walkers.log_w) if log_w is not None else None
        feats = apply_batched(self.classifier.features, walkers.x)
        gen = eval_generator(seed, trainer.step_count, self.device)
        start = torch.rand(cfg.chains, *EVENT, generator=gen, device=self.device) * 2 - 1
        ends, acceptance = mala_chain_ends(trainer.energy, start, cfg.chain_steps, cfg.noise_std**2 / 2, gen)
        return {
            "step": trainer.step_count,
            **mass_fields("walker", self._labels(walkers.x), log_w, target),
            **mass_fields("model", self._labels(ends), None, target),
            "chain_acceptance": acceptance,
            "frechet": frechet_from_moments(*gaussian_moments(feats, w), *self.heldout_moments),
            **estimates(trainer, trainer.data),
        }

    def finish(self, trainer: Trainer, seed: int, stem: Path, write: bool) -> dict[str, Any]:
        """Save a grid of walkers to ``<stem>_samples.pt`` (drawn by weight for Jarzynski; a collective
        call under torchrun)."""
        walkers = trainer.population()
        if trainer.phase.weighted:
            idx = systematic(normalized_weights(walkers.log_w.cpu()), GRID, torch.Generator().manual_seed(0))
            images = walkers.x.cpu()[idx]
        else:
            images = walkers.x[:GRID].cpu()
        if write:
            save_torch(images.clone(), f"{stem}_samples.pt")
        return {}


def get_classifier(
    cfg: PixelConfig, split: DigitSplit, out: Path, resume: bool, progress: bool | None
) -> tuple[DigitClassifier, dict[str, Any]]:
    """Train on the CPU (or, with resume, reload ``classifier.pt``) the 3-class classifier and report its
    held-out accuracy.  Training is seeded, so every process of a torchrun job trains the same classifier."""
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
    info = {
        "heldout_accuracy": accuracy(model, split.heldout.images, split.heldout.labels),
        "n_train": len(split.classifier),
        "n_heldout": len(split.heldout),
        "epochs": cfg.classifier_epochs,
        "time_s": time.perf_counter() - start,
        "path": path.name,
    }
    return model, info


def pixel_study(
    cfg: PixelConfig,
    split: DigitSplit,
    out: Path,
    resume: bool,
    progress: bool | None,
    device: torch.device | str = "cpu",
) -> PixelStudy:
    """Classifier (evaluated on ``device``, where the walkers live), held-out feature moments, and the
    floors of the walker metrics: the same metrics on the real EBM training images (classifier
    fractions and TV; Frechet distance between two real sets)."""
    classifier, info = get_classifier(cfg, split, out, resume, progress)
    classifier = classifier.to(device)
    split = split.to(device)
    held = gaussian_moments(apply_batched(classifier.features, split.heldout.images))
    frac = torch.bincount(predict(classifier, split.ebm.images), minlength=len(DIGITS)).double() / len(split.ebm)
    info["reference"] = {
        "ebm_images_fractions": frac.tolist(),
        "ebm_images_tv": total_variation(frac, cfg.target_fractions),
        "ebm_images_frechet": frechet_from_moments(
            *gaussian_moments(apply_batched(classifier.features, split.ebm.images)), *held
        ),
    }
    return PixelStudy(cfg, split, classifier, held, info, torch.device(device))
