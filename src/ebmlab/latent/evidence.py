"""The test log-likelihood of a trained latent EBM with any sampler, as a report: importance sampling of log p~(x)
from the sampler's latents (:func:`~ebmlab.latent.likelihood.importance_log_marginal`), log Z_alpha from the
Jarzynski walkers' estimator population (``jarzynski``) or from AIS over the prior (LEBM, DAMC; for ``jarzynski``
the AIS value is the cross-check), and the AIS check of log p~(x) on a few test images
(:func:`~ebmlab.latent.likelihood.ais_log_marginal`).  All values in nats (per image where a mean)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import check_int
from ..estimators.estimate import Estimate
from ..metrics.classifier import apply_batched
from ..sampling.tempering import Tempering
from .laplace_proposal import LikelihoodConfig
from .likelihood import ais_log_marginal, combine, importance_log_marginal, prior_log_z_ais
from .models import LatentModel
from .weighted_prior import JarzynskiPriorSampler, Sampler

KHAT_LIMIT = 0.7  # Pareto k-hat above which an image's importance weights are too heavy-tailed for its SE


@dataclass(frozen=True)
class EvidenceConfig:
    """Settings of :func:`loglik_metrics`.

    proposal: the importance-sampling proposal per image (draws, Gauss-Newton steps, Student-t dof); starts:
    sampler latents per image, one proposal component each; prior_walkers, prior_steps: the AIS estimate of
    log Z_alpha (walkers, MALA steps per temperature); check_images, check_chains, check_steps,
    check_pilot_steps, check_cess: the AIS check of log p~(x) (images, chains per image, preconditioned MALA
    steps per temperature and in the pilot run, conditional ESS per temperature step in (0, 1)).
    """

    # 261 = 29 draws for each of 8 Student-t components and the defensive N(0, I)
    proposal: LikelihoodConfig = field(default_factory=lambda: LikelihoodConfig(n_samples=261, newton_steps=3))
    starts: int = 8
    prior_walkers: int = 1000
    prior_steps: int = 5
    check_images: int = 8
    check_chains: int = 64
    check_steps: int = 10
    check_pilot_steps: int = 3
    check_cess: float = 0.95

    def __post_init__(self) -> None:
        if not isinstance(self.proposal, LikelihoodConfig):
            raise TypeError(f"proposal must be a LikelihoodConfig, got {type(self.proposal).__name__}")
        for name, minimum in (("starts", 1), ("prior_walkers", 2), ("prior_steps", 1), ("check_images", 1)):
            check_int(name, getattr(self, name), minimum)
        for name, minimum in (("check_chains", 2), ("check_steps", 1), ("check_pilot_steps", 1)):
            check_int(name, getattr(self, name), minimum)
        if not 0 < self.check_cess < 1:
            raise ValueError(f"check_cess must lie in (0, 1), got {self.check_cess}")


def z_score(a: float, se_a: float, b: float, se_b: float) -> float:
    """(a - b) / sqrt(se_a^2 + se_b^2): the difference of two independent estimates in standard errors."""
    return (a - b) / math.sqrt(se_a**2 + se_b**2)


def prior_log_z(model: LatentModel, sampler: Sampler, cfg: EvidenceConfig, gen: torch.Generator) -> dict[str, Any]:
    """log Z_alpha (relative to N(0, I)) with its SE: AIS for every sampler, the estimator population's value
    for ``jarzynski`` (then the one used, and compared with AIS)."""
    start = time.perf_counter()
    est = prior_log_z_ais(model, cfg.prior_walkers, cfg.prior_steps, gen, Tempering(pilot_steps=3))
    ais_z, ais_se = float(est.log_z), float(est.se)
    out: dict[str, Any] = {
        "log_z_prior_ais": ais_z,
        "log_z_prior_ais_se": ais_se,
        "log_z_prior_ais_acceptance": est.diagnostics["acceptance"],
        "log_z_prior_ais_temperatures": est.diagnostics["n_temperatures"],
        "log_z_prior_ais_wall_time_s": time.perf_counter() - start,
        "log_z_source": "ais",
        "log_z": ais_z,
        "log_z_se": ais_se,
    }
    if isinstance(sampler, JarzynskiPriorSampler):
        log_z, se = sampler.log_z(model)
        out |= {
            "log_z_prior_walkers": log_z,
            "log_z_prior_walkers_se": se,
            "log_z_walkers_minus_ais_in_se": z_score(log_z, se, ais_z, ais_se),
            "log_z_source": "walkers",
            "log_z": log_z,
            "log_z_se": se,
        }
    return out


def ais_check(
    model: LatentModel, x: Tensor, log_m: Tensor, log_m_se: Tensor, cfg: EvidenceConfig, gen: torch.Generator
) -> dict[str, Any]:
    """log p~(x) by AIS (:func:`~ebmlab.latent.likelihood.ais_log_marginal`) on the first ``cfg.check_images``
    images against their IS estimates log_m +- log_m_se (N,): the means and, per image, both values and their
    difference in combined SEs; ``agree`` when the means are within 3 combined SEs."""
    k = min(cfg.check_images, x.shape[0])
    start = time.perf_counter()
    tempering = Tempering(cess_target=cfg.check_cess, pilot_steps=cfg.check_pilot_steps)
    a, a_se, diag = ais_log_marginal(model, x[:k], cfg.check_chains, tempering, cfg.check_steps, gen)
    is_k, is_se_k = log_m[:k].cpu(), log_m_se[:k].cpu()
    is_mean, is_se = float(is_k.mean()), float(is_se_k.square().sum().sqrt()) / k
    ais_mean, ais_se = float(a.mean()), float(a_se.square().sum().sqrt()) / k
    z = z_score(is_mean, is_se, ais_mean, ais_se)
    return {
        "n_images": k,
        "is_mean_log_marginal": is_mean,
        "is_se": is_se,
        "ais_mean_log_marginal": ais_mean,
        "ais_se": ais_se,
        "is_minus_ais_in_se": z,
        "agree": abs(z) <= 3.0,
        "per_image": {
            "is": is_k.tolist(),
            "is_se": is_se_k.tolist(),
            "ais": a.tolist(),
            "ais_se": a_se.tolist(),
            "is_minus_ais_in_se": ((is_k - a) / (is_se_k.square() + a_se.square()).sqrt()).tolist(),
        },
        "ais_chains": cfg.check_chains,
        "ais_steps": cfg.check_steps,
        "ais_pilot_steps": cfg.check_pilot_steps,
        "ais_cess_target": cfg.check_cess,
        "ais_temperatures": diag["temperatures"],
        "ais_acceptance": diag["acceptance"],
        "wall_time_s": time.perf_counter() - start,
    }


def loglik_metrics(
    model: LatentModel, sampler: Sampler, x: Tensor, cfg: EvidenceConfig, gen: torch.Generator, check: bool = True
) -> tuple[dict[str, Any], Tensor]:
    """Metrics of the test log-likelihood (nats per image) of images x (N, *x_shape) and the per-image log p(x)
    (N,): :func:`~ebmlab.latent.likelihood.combine`'s values, :func:`prior_log_z`'s and
    :func:`weight_diagnostics`'.  check: also estimate log p~(x) by AIS on the first ``cfg.check_images`` images
    and compare (:func:`ais_check`, key ``loglik_ais_check``)."""
    start = time.perf_counter()
    starts = torch.stack(
        [apply_batched(lambda xb: sampler.infer(model, xb, gen), x, 256, grad=True) for _ in range(cfg.starts)], 1
    )
    est = importance_log_marginal(model, x, starts, cfg.proposal, gen)
    log_m, log_m_se = est.log_z, est.se
    is_time = time.perf_counter() - start
    z = prior_log_z(model, sampler, cfg, gen)
    out = {
        **combine(log_m, log_m_se, z["log_z"], z["log_z_se"]),
        **z,
        **weight_diagnostics(est),
        "loglik_is_samples": est.diagnostics["n_draws"],
        "loglik_is_starts": cfg.starts,
        "loglik_is_wall_time_s": is_time,
        "n_loglik_images": x.shape[0],
    }
    if check:
        out["loglik_ais_check"] = ais_check(model, x, log_m, log_m_se, cfg, gen)
    return out, log_m - z["log_z"]


def weight_diagnostics(est: Estimate) -> dict[str, Any]:
    """Per-image weight diagnostics of the IS log-likelihood (lists over the test images) and their extremes:
    Kish ESS of the weights, the largest normalised weight, Pareto k-hat, and the p-value of the starts'
    agreement (:func:`~ebmlab.latent.likelihood.stratified_log_marginal`)."""
    d = est.diagnostics
    p_start = d["start_p_value"]
    if est.ess is None:
        raise ValueError("weight_diagnostics needs an estimate with its ESS (from importance_log_marginal)")
    return {
        "loglik_is_ess": est.ess.tolist(),
        "loglik_is_max_weight": d["max_weight"].tolist(),
        "loglik_is_khat": d["pareto_khat"].tolist(),
        "loglik_is_start_p": p_start.tolist(),
        "loglik_is_ess_min": float(est.ess.min()),
        "loglik_is_max_weight_max": float(d["max_weight"].max()),
        "loglik_is_khat_max": float(d["pareto_khat"].max()),
        "loglik_is_n_khat_above_0.7": int((d["pareto_khat"] > KHAT_LIMIT).sum()),
        "loglik_is_start_p_min": float(p_start.min()) if not bool(p_start.isnan().all()) else None,
    }
