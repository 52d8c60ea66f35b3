"""The imbalanced-digit study in a low-dimensional projection, judged by the model's class masses.

Representation (:func:`~ebmlab.data.projection.fit_projection`, fitted on the EBM training digits):
``lda`` = PCA to 50 dimensions then LDA to ``dim`` (2), ``pca`` = PCA to ``dim`` (8, label-free);
standardised and multiplied by ``scale``.  Energy: ``MLPEnergy(dim, hidden, confinement_std=scale)``,
whose initial model is exactly N(0, scale^2 I), the data's mean and covariance (exact initial draws
and log Z; walkers drawn from it already cover every digit cluster).  Class regions: an RBF
SVC (:class:`~ebmlab.metrics.regions.RegionClassifier`) fitted on the classifier digits in the same
coordinates.  Every method's walkers and every method's model are labelled by it:

- walker fractions: the gradient's walkers (weighted for Jarzynski);
- model masses: exact grid quadrature for dim <= 2 (:class:`~ebmlab.metrics.masses.QuadratureCheck`),
  and for every dim annealed importance sampling from the initial model at every evaluation
  (:func:`~ebmlab.metrics.masses.ais_class_masses`: independent particles, honest standard errors;
  in 2-D checked against the quadrature);
- the trainer's estimator population (walkers drawn from the initial model and moved along the same
  parameter path, never used in the gradient): log Z over training and its own class masses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...data.projection import fit_projection
from ...data.subsets import DigitSplit
from ...distributed import LOCAL, Collective
from ...energies import Gaussian, MLPEnergy
from ...io import save_torch
from ...metrics.mass_checks import check_class_masses
from ...metrics.masses import QuadratureCheck, ais_class_masses, total_variation
from ...metrics.regions import RegionClassifier
from ...sampling import smc
from ...sampling.preconditioner import Preconditioner
from ...training import Trainer
from ..study import eval_generator
from .config import DIGITS, LowDimConfig
from .eval import estimates, mass_fields, walker_log_weights


def make_energy(cfg: LowDimConfig, seed: int) -> MLPEnergy:
    """The MLP energy with weights drawn from ``seed`` (global torch RNG untouched); initially N(0, scale^2 I)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPEnergy(cfg.dim, hidden=cfg.hidden, confinement_std=cfg.scale)


def build_trainer(cfg: LowDimConfig, method: str, seed: int, data: Tensor) -> Trainer:
    """Adam at a constant learning rate on the full data batch; ULA (or MALA) walkers (resampled for Jarzynski);
    every method gets an estimator population of ``cfg.log_z_walkers`` walkers from the initial model."""
    energy = make_energy(cfg, seed)
    return Trainer(
        energy,
        data,
        torch.optim.Adam(energy.parameters(), lr=cfg.lr),
        cfg.negative_phase(method, cfg.step_size),
        n_walkers=cfg.n_walkers,
        generator=torch.Generator().manual_seed(seed),
        init_sampler=energy.sample_initial,
        log_z0=energy.initial_log_z(),
        log_z_walkers=cfg.log_z_walkers,
        precondition=data_preconditioner(data) if cfg.precondition else None,
        **cfg.trainer_options(method),
    )


def data_preconditioner(data: Tensor) -> Preconditioner:
    """The whitening map of the data: shift = their mean, L L^T = their covariance."""
    return Preconditioner.from_moments(data, torch.ones(data.shape[0], dtype=torch.float64))


def model_ais(
    energy: nn.Module, cfg: LowDimConfig, regions: RegionClassifier, seed: int, step: int, final: bool = False
) -> dict[str, Any]:
    """AIS class masses and log Z of ``energy`` from its initial model N(0, scale^2 I), the Gaussian with
    the data's mean and covariance (the coordinates are standardised, then multiplied by ``scale``);
    with ``final`` the larger run of the final model (``final_ais_particles``, ``final_ais_temperatures``).
    Its draws come from :func:`~ebmlab.experiments.study.eval_generator` (seed, step)."""
    base = Gaussian(torch.zeros(cfg.dim), cfg.scale, learn_std=False)
    move = smc.Move("mala", step_size=cfg.ais_step_size, n_steps=cfg.ais_mala_steps)
    particles, steps = (
        (cfg.final_ais_particles, cfg.final_ais_temperatures) if final else (cfg.ais_particles, cfg.ais_temperatures)
    )
    out = ais_class_masses(
        energy,
        base,
        regions,
        len(DIGITS),
        particles=particles,
        steps=steps,
        move=move,
        generator=eval_generator(seed, step),
    )
    return out | {"tv": total_variation(out["masses"], cfg.target_fractions), "particles": particles, "steps": steps}


def z_scores(estimate: list[float], se: list[float], exact: list[float]) -> list[float | None]:
    """(estimate - exact) / SE per class; None where the SE is 0."""
    return [(e - x) / s if s > 0 else None for e, s, x in zip(estimate, se, exact)]


@dataclass
class LowDimStudy:
    """One projected space: coordinates of the training digits, class regions, quadrature grid."""

    cfg: LowDimConfig
    regions: RegionClassifier
    data: Tensor  # (n, dim) coordinates of the EBM training digits
    labels: Tensor  # (n,) their digit classes
    check: QuadratureCheck | None  # dim <= 2 only
    info: dict[str, Any]

    def save(self, out: Path) -> None:
        """``regions.pt`` for the heat maps (dim <= 2): grid labels, training coordinates and labels."""
        if self.check is not None:
            n, dim = self.cfg.grid_cells, self.cfg.dim
            save_torch(
                {
                    "labels": self.check.base.labels.reshape(*[n] * dim),
                    "half_width": self.cfg.grid_half_width,
                    "data": self.data,
                    "data_labels": self.labels,
                },
                out / "regions.pt",
            )

    def build_trainer(self, method: str, seed: int, collective: Collective = LOCAL) -> Trainer:
        """One process only (:func:`~ebmlab.experiments.mnist.run_study` refuses a distributed run)."""
        return build_trainer(self.cfg, method, seed, self.data)

    def evaluate(self, trainer: Trainer, seed: int) -> dict[str, Any]:
        """Walker fractions; the model's class masses by AIS and, in 1-D/2-D, by quadrature (then the
        exact log Z and the errors of the estimates); the estimator population's class masses and log Z
        estimates.  ``model_*`` is the quadrature where it exists, else AIS."""
        target, est, walkers = self.cfg.target_fractions, trainer.estimator, trainer.walkers
        ais = model_ais(trainer.energy, self.cfg, self.regions, seed, trainer.step_count)
        row: dict[str, Any] = {
            "step": trainer.step_count,
            **mass_fields(
                "walker", self.regions(walkers.x), walker_log_weights(walkers, trainer.phase.weighted), target
            ),
            **{f"ais_{k}": v for k, v in ais.items() if k not in ("particles", "steps")},
            **estimates(trainer, self.data),
        }
        if est is not None:
            row |= mass_fields("estimator", self.regions(est.x), est.log_w, target, est.eve)
            row["estimator_ancestors"] = est.n if est.eve is None else int(est.eve.unique().numel())
        if self.check is None:
            return row | {k.replace("ais_", "model_", 1): row[k] for k in ("ais_masses", "ais_masses_se", "ais_tv")}
        q = self.check.base(trainer.energy)
        exact = q.masses.tolist()
        row |= {
            "model_masses": exact,
            "model_tv": total_variation(q.masses, target),
            "log_z_exact": q.log_z,
            "edge_mass": q.edge_mass,
            "ais_log_z_error": ais["log_z"] - q.log_z,
            "ais_mass_z": z_scores(ais["masses"], ais["masses_se"], exact),
        }
        if "log_z_est" in row:
            row["log_z_error"] = row["log_z_est"] - q.log_z
        return row

    def finish(self, trainer: Trainer, seed: int, stem: Path, write: bool) -> dict[str, Any]:
        """The final model: a larger AIS run (its class masses with standard errors are the reported
        final masses where there is no quadrature) and, in 1-D/2-D, quadrature with its error estimates
        and the AIS errors against it; the log density on the grid goes to ``<stem>_density.pt`` for
        the heat maps."""
        final: dict[str, Any] = {
            "ais": model_ais(trainer.energy, self.cfg, self.regions, seed, trainer.step_count, True)
        }
        s = trainer.summary()
        if "log_z_est" in s:  # the estimator population's log Z of the final model
            final["estimator_log_z"], final["estimator_log_z_se"] = s["log_z_est"], s["log_z_se"]
        if self.cfg.mass_check is not None:
            final["checked"] = self.checked_masses(trainer, seed)
        if self.check is None:
            return final
        quad, ais = self.check(trainer.energy), final["ais"]
        if write:
            n, dim = self.cfg.grid_cells, self.cfg.dim
            log_density = self.check.base.log_density(trainer.energy).float().reshape(*[n] * dim)
            save_torch(log_density, f"{stem}_density.pt")
        return final | {
            "quadrature": quad,
            "quadrature_mass_error": max(quad["mass_error_refine"], quad["mass_error_wide"]),
            "ais_log_z_error": ais["log_z"] - quad["log_z"],
            "ais_mass_z": z_scores(ais["masses"], ais["masses_se"], quad["masses"]),
        }

    def checked_masses(self, trainer: Trainer, seed: int) -> dict[str, Any]:
        """The final model's class masses by tempered SMC, class-Gaussian IS and MALA chains from the trained
        walkers, with the verdict (:func:`~ebmlab.metrics.mass_checks.check_class_masses`)."""
        cfg = self.cfg
        assert cfg.mass_check is not None  # called only for a configuration with a mass check
        base = Gaussian(torch.zeros(cfg.dim), cfg.scale, learn_std=False)
        walkers = (trainer.walkers.x, walker_log_weights(trainer.walkers, trainer.phase.weighted))
        g = torch.Generator().manual_seed(CHECK_SEED + 1_000_003 * (seed + 1) + trainer.step_count)
        out = check_class_masses(
            trainer.energy, base, self.regions, cfg.target_fractions, (self.data, self.labels), walkers,
            cfg.mass_check, g,
        )  # fmt: skip
        return out


CHECK_SEED = 2**40  # the mass checks' draws are seeded apart from the evaluations' (eval_generator)


def lowdim_study(cfg: LowDimConfig, split: DigitSplit) -> LowDimStudy:
    """Fit the projection on the EBM digits and the SVC on the classifier digits; build the grid."""
    projection = fit_projection(cfg.space, cfg.dim, split.ebm.images, split.ebm.labels, cfg.scale, cfg.pca_dims)
    data = projection(split.ebm.images)
    regions = RegionClassifier.fit(projection(split.classifier.images), split.classifier.labels, cfg.svc_c)
    held = projection(split.heldout.images)
    train_frac = torch.bincount(regions(data), minlength=len(DIGITS)).double() / data.shape[0]
    info = {
        "space": cfg.space,
        "dim": cfg.dim,
        "svc_heldout_accuracy": regions.accuracy(held, split.heldout.labels),
        "svc_train_accuracy": regions.accuracy(data, split.ebm.labels),
        "n_svc_train": len(split.classifier),
        "reference": {
            "ebm_digits_fractions": train_frac.tolist(),
            "ebm_digits_tv": total_variation(train_frac, cfg.target_fractions),
        },
        "data_extent": data.abs().max().item(),
    }
    check = None
    if cfg.exact:
        check = QuadratureCheck.build(regions, cfg.grid_half_width, cfg.grid_cells, cfg.dim, len(DIGITS))
        info["grid"] = {
            "half_width": cfg.grid_half_width,
            "cells_per_axis": cfg.grid_cells,
            "cell_width": 2 * cfg.grid_half_width / cfg.grid_cells,
        }
    return LowDimStudy(cfg, regions, data, split.ebm.labels, check, info)
