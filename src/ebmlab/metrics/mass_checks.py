"""A model's class masses measured three independent ways, and the verdict whether they agree.

In more than two dimensions no quadrature gives the masses of exp(-U)/Z.  One estimator alone can fail
silently: annealing from a broad initial model can miss a mode that the path never reaches, and then both it
and anything else started from that model share the blind spot.  So each mass is measured by

- ``smc``: tempered SMC from the initial model along the geometric path, with temperatures chosen by
  conditional ESS and MALA moves preconditioned by the walkers' moments, adapted on an independent pilot
  population and then frozen (:mod:`ebmlab.sampling.tempering`; unbiased for Z); standard errors from the
  genealogy of the resampled population (walkers descended from one start count as one);
- ``is``: importance sampling from a mixture of one Gaussian per class, fitted to that class's training
  points, plus the initial model as a defensive component (Hesterberg 1995), which starts from the data, not
  from the initial model; self-normalised masses with their delta-method standard errors and the ESS;
- ``chains``: long MALA chains at the final parameters, half started from the trained walkers and half from
  the tempered SMC's particles (each resampled by its weights), labelled at their ends; binomial standard
  errors.  They count only when the two halves agree: chains that still remember where they started say
  nothing about the model.

A mass is *reliable* when the tempered SMC kept its final ESS/N at or above ``min_ess_frac``, at least one
independent estimator is usable, and every pair of usable estimators agrees within ``tolerance`` (3) combined
standard errors.  The importance sampler is usable while its ESS is at least ``min_is_ess`` draws (in high
dimension a Gaussian proposal often collapses onto one draw, whose tiny reported standard error would condemn
every other estimate); the chains while their two halves agree.  A total-variation distance computed from
any unreliable mass is not a result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import check_int
from ..sampling import smc
from ..sampling.resampling import check_threshold
from ..sampling.tempering import Tempering, adapt_schedule, geometric_path, run_schedule
from ..sampling.walkers import Walkers, ess_fraction, log_z_estimate, log_z_se
from .class_gaussians import ClassGaussians, importance_class_masses
from .masses import ExactModel, Labeller, mala_chain_ends, total_variation, weighted_class_masses


@dataclass(frozen=True)
class MassCheck:
    """Settings of :func:`check_class_masses`.

    smc_particles / pilot_particles: tempered-SMC walkers and its independent pilot; cess_target: the
    conditional ESS/N kept between temperatures; smc_steps: preconditioned MALA steps per temperature;
    smc_step_size: the pilot's first MALA step (in whitened coordinates); is_draws: importance draws;
    defensive: weight of the initial model in the proposal mixture; ridge: added to each class covariance,
    relative to its mean variance; chains / chain_steps / chain_step_size: the MALA chains from the walkers;
    tolerance: pairwise disagreement, in combined standard errors, beyond which a mass is unreliable;
    min_ess_frac: the tempered SMC's final ESS/N below which its masses are unreliable; min_is_ess: the
    importance sampler's ESS (draws) below which it has collapsed and is left out of the comparison (its
    standard errors mean nothing then), which leaves the chains as the independent check.
    """

    smc_particles: int = 2000
    pilot_particles: int = 500
    cess_target: float = 0.9
    smc_steps: int = 3
    smc_step_size: float = 0.5
    is_draws: int = 20_000
    defensive: float = 0.2
    ridge: float = 0.01
    chains: int = 1000
    chain_steps: int = 2000
    chain_step_size: float = 0.05
    tolerance: float = 3.0
    min_ess_frac: float = 0.3
    min_is_ess: int = 100

    def __post_init__(self) -> None:
        minimum = {"smc_particles": 2, "pilot_particles": 2, "smc_steps": 1, "is_draws": 2, "chains": 2}
        for name, low in (minimum | {"min_is_ess": 1, "chain_steps": 0}).items():
            check_int(f"MassCheck.{name}", getattr(self, name), low)
        for name in ("cess_target", "defensive", "min_ess_frac"):
            if check_threshold(getattr(self, name), f"MassCheck.{name}") == 1:
                raise ValueError(f"MassCheck.{name} must lie in (0, 1), got 1")
        for name in ("smc_step_size", "ridge", "chain_step_size", "tolerance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"MassCheck.{name} must be a positive number, got {v!r}")


def tempered_class_masses(
    energy: nn.Module, base: ExactModel, labeller: Labeller, n_classes: int, cfg: MassCheck, generator: torch.Generator
) -> dict[str, Any]:
    """Masses (C,), their genealogy SEs, log Z (nats) and its SE, the final ESS/N, the number of surviving
    ancestors and of temperatures, by pilot-adapted tempered SMC from ``base`` (exact ``sample`` and
    ``log_z``) to exp(-energy); also the final walkers ``x`` (N, d) and ``log_w`` (N,)."""
    move = smc.Move("mala", cfg.smc_step_size, n_steps=cfg.smc_steps)
    tempering = Tempering(cess_target=cfg.cess_target, precondition=True)
    with torch.no_grad():
        log_z0 = float(base.log_z())
    pilot = base.sample(cfg.pilot_particles, generator)
    schedule = adapt_schedule(base, energy, pilot, tempering, move, generator)
    x = base.sample(cfg.smc_particles, generator)
    walkers = smc.start(geometric_path(base, energy, 0.0), x, log_z0)
    walkers, infos = run_schedule(base, energy, walkers, schedule, move, generator)
    masses, se = weighted_class_masses(labeller(walkers.x), walkers.log_w, n_classes, walkers.eve)
    rates = [float(i.accept_rate) for i in infos if i.accept_rate is not None]
    return {
        "x": walkers.x,
        "log_w": walkers.log_w,
        "masses": masses.tolist(),
        "masses_se": se.tolist(),
        "log_z": float(log_z_estimate(walkers)),
        "log_z_se": float(log_z_se(walkers)),
        "ess_frac": float(ess_fraction(walkers.log_w)),
        "ancestors": _ancestors(walkers),
        "n_temperatures": len(schedule),
        "n_resamplings": walkers.n_resamplings,
        "acceptance": sum(rates) / len(rates) if rates else None,
    }


def far_mass(x: Tensor, log_w: Tensor, train: Tensor) -> float:
    """The weighted fraction of draws x (N, d) farther from every training point (n, d) than 99% of the training
    points are from their nearest other training point: mass the model puts away from the data, where class
    regions fitted to the data label by extrapolation."""
    t = train.double()
    nn_dist = torch.cdist(t, t).fill_diagonal_(math.inf).min(1).values
    radius = torch.quantile(nn_dist, 0.99)
    far = torch.cdist(x.double(), t).min(1).values > radius
    return float(torch.softmax(log_w.double(), 0)[far].sum())


def _ancestors(walkers: Walkers) -> int:
    return walkers.n if walkers.eve is None else int(walkers.eve.unique().numel())


def _chains_from(
    energy: nn.Module, x: Tensor, log_w: Tensor | None, cfg: MassCheck, generator: torch.Generator
) -> tuple[Tensor, float, float]:
    """``cfg.chains`` MALA chains started at points x (N, d) drawn by their weights (``log_w`` None: equal):
    during the first fifth of the steps the step size is tuned towards acceptance ``CHAIN_ACCEPT`` every
    ``TUNE_EVERY`` steps, then frozen.  Returns the chain ends, the frozen step and the acceptance after it."""
    probs = torch.full((x.shape[0],), 1.0 / x.shape[0]) if log_w is None else torch.softmax(log_w.double(), 0)
    idx = torch.multinomial(probs, cfg.chains, True, generator=generator)
    y, h = x[idx].detach(), cfg.chain_step_size
    tune = cfg.chain_steps // 5 // TUNE_EVERY
    for _ in range(tune):
        y, acc = mala_chain_ends(energy, y, TUNE_EVERY, h, generator)
        h *= math.exp(2.0 * (acc - CHAIN_ACCEPT))
    ends, acceptance = mala_chain_ends(energy, y, cfg.chain_steps - tune * TUNE_EVERY, h, generator)
    return ends, h, acceptance


def chain_class_masses(
    energy: nn.Module,
    starts: dict[str, tuple[Tensor, Tensor | None]],
    labeller: Labeller,
    n_classes: int,
    cfg: MassCheck,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Masses (C,) and binomial SEs from MALA chains at fixed parameters run from each set of ``starts``
    (name -> (points (N, d), log-weights or None)), ``cfg.chains`` chains of ``cfg.chain_steps`` steps each.

    The chains have *mixed* (``usable``) when the sets' end fractions agree within ``cfg.tolerance`` combined
    SEs in every class; then the pooled ends are the estimate.  When they do not, each set still remembers
    where it started, so the chains say nothing about the model's masses and are left out of the verdict.
    """
    per_start: dict[str, dict[str, Any]] = {}
    ends_all: list[Tensor] = []
    steps: dict[str, float] = {}
    for name, (x, log_w) in starts.items():
        ends, h, acceptance = _chains_from(energy, x, log_w, cfg, generator)
        m, se = weighted_class_masses(labeller(ends), None, n_classes)
        per_start[name] = {"masses": m.tolist(), "masses_se": se.tolist(), "acceptance": acceptance}
        steps[name] = h
        ends_all.append(ends)
    mixed, _ = agreement(per_start, cfg.tolerance) if len(per_start) > 1 else ([True] * n_classes, [])
    masses, se = weighted_class_masses(labeller(torch.cat(ends_all)), None, n_classes)
    return {
        "masses": masses.tolist(),
        "masses_se": se.tolist(),
        "usable": all(mixed),
        "starts": per_start,
        "step_sizes": steps,
        "acceptance": sum(v["acceptance"] for v in per_start.values()) / len(per_start),
    }


CHAIN_ACCEPT, TUNE_EVERY = 0.6, 50


def agreement(results: dict[str, dict[str, Any]], tolerance: float) -> tuple[list[bool], list[list[float | None]]]:
    """Per class: whether every pair of estimators agrees within ``tolerance`` combined SEs, and the pairwise
    z-scores (in the order of ``combinations(results)``; None where both SEs are 0)."""
    names = list(results)
    n_classes = len(results[names[0]]["masses"])
    z_by_pair = []
    for a, b in combinations(names, 2):
        row = []
        for c in range(n_classes):
            diff = results[a]["masses"][c] - results[b]["masses"][c]
            se = math.hypot(results[a]["masses_se"][c], results[b]["masses_se"][c])
            row.append(diff / se if se > 0 else (None if diff == 0 else math.inf))
        z_by_pair.append(row)
    ok = [all(z is None or abs(z) <= tolerance for z in (row[c] for row in z_by_pair)) for c in range(n_classes)]
    return ok, z_by_pair


def check_class_masses(
    energy: nn.Module,
    base: ExactModel,
    labeller: Labeller,
    target: tuple[float, ...],
    train: tuple[Tensor, Tensor],
    walkers: tuple[Tensor, Tensor | None],
    cfg: MassCheck,
    generator: torch.Generator,
) -> dict[str, Any]:
    """The three estimates of the model's class masses (see the module docstring) and the verdict.

    base: the initial model (exact ``sample``/``log_z``); target: the class fractions the TV refers to;
    train: (points (n, d), labels (n,)) for the class Gaussians; walkers: (positions (N, d), log-weights or
    None) to start half the chains from.  Returns the three blocks, ``pairs`` (usable estimator pairs, in the
    order of the z-scores ``z``), ``reliable`` per class, ``unreliable_reasons``, ``tv`` from the tempered SMC
    and ``tv_reliable``.
    """
    n_classes = len(target)
    proposal = ClassGaussians(*train, n_classes, base, cfg.defensive, cfg.ridge)
    smc = tempered_class_masses(energy, base, labeller, n_classes, cfg, generator)
    x_smc, log_w_smc = smc.pop("x"), smc.pop("log_w")
    smc["far_mass"] = far_mass(x_smc, log_w_smc, train[0])
    results = {
        "smc": smc,
        "is": importance_class_masses(energy, proposal, labeller, n_classes, cfg.is_draws, generator),
        "chains": chain_class_masses(
            energy, {"walkers": walkers, "smc": (x_smc, log_w_smc)}, labeller, n_classes, cfg, generator
        ),
    }
    results["is"]["usable"] = results["is"]["ess_frac"] * cfg.is_draws >= cfg.min_is_ess
    usable = {k: v for k, v in results.items() if v.get("usable", True)}
    ok, z = agreement(usable, cfg.tolerance)
    smc_ok, checked = smc["ess_frac"] >= cfg.min_ess_frac, len(usable) >= 2
    reasons = [
        *([] if smc_ok else ["the tempered SMC's final ESS/N is below min_ess_frac"]),
        *([] if checked else ["no independent estimator is usable (IS collapsed, chains unmixed)"]),
        *([] if all(ok) else ["the usable estimators disagree beyond the tolerance"]),
    ]
    reliable = [o and smc_ok and checked for o in ok]
    return results | {
        "pairs": [f"{a}-{b}" for a, b in combinations(usable, 2)],
        "z": z,
        "reliable": reliable,
        "unreliable_reasons": reasons,
        "tv": total_variation(smc["masses"], target),
        "tv_reliable": all(reliable),
    }


__all__ = [
    "MassCheck",
    "agreement",
    "chain_class_masses",
    "check_class_masses",
    "far_mass",
    "tempered_class_masses",
]
