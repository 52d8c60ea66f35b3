"""Test log-likelihood of a trained latent EBM for ``ebmlab latent`` (any sampler): importance sampling of
log p~(x) from the sampler's latents, log Z_alpha from the Jarzynski walkers (``jarzynski``) or from AIS over
the prior (LEBM, DAMC; for ``jarzynski`` the AIS value is the cross-check), and the AIS check of log p~(x)
on a few test images (see :mod:`ebmlab.latent.likelihood`)."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import Tensor

from ...estimators.estimate import Estimate
from ...latent.likelihood import (
    LikelihoodConfig,
    ais_log_marginal,
    combine,
    importance_log_marginal,
    prior_log_z_ais,
)
from ...latent.models import LatentModel
from ...latent.weighted_prior import JarzynskiPriorSampler
from ...metrics.classifier import apply_batched
from ...sampling.tempering import Tempering
from .build import Sampler
from .config import LatentPreset


def z_score(a: float, se_a: float, b: float, se_b: float) -> float:
    """(a - b) / sqrt(se_a^2 + se_b^2): the difference of two independent estimates in standard errors."""
    return (a - b) / math.sqrt(se_a**2 + se_b**2)


def prior_log_z(model: LatentModel, sampler: Sampler, p: LatentPreset, gen: torch.Generator) -> dict[str, Any]:
    """log Z_alpha (relative to N(0, I)) with its SE: AIS for every sampler, the estimator population's value
    for ``jarzynski`` (then the one used, and compared with AIS)."""
    start = time.perf_counter()
    est = prior_log_z_ais(model, p.ais_prior_walkers, p.ais_prior_moves, gen, Tempering(pilot_moves=3))
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
    model: LatentModel, x: Tensor, log_m: Tensor, log_m_se: Tensor, p: LatentPreset, gen: torch.Generator
) -> dict[str, Any]:
    """log p~(x) by AIS (:func:`~ebmlab.latent.likelihood.ais_log_marginal`) on the first ``p.ais_check_images``
    images against their IS estimates log_m +- log_m_se: the means and, per image, both values and their
    difference in combined SEs; ``agree`` when the means are within 3 combined SEs."""
    k = min(p.ais_check_images, x.shape[0])
    start = time.perf_counter()
    tempering = Tempering(cess_target=p.ais_check_cess, pilot_moves=p.ais_check_pilot_moves)
    a, a_se, diag = ais_log_marginal(model, x[:k], p.ais_check_chains, tempering, p.ais_check_moves, gen)
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
        "ais_chains": p.ais_check_chains,
        "ais_moves": p.ais_check_moves,
        "ais_pilot_moves": p.ais_check_pilot_moves,
        "ais_cess_target": p.ais_check_cess,
        "ais_temperatures": diag["temperatures"],
        "ais_acceptance": diag["acceptance"],
        "wall_time_s": time.perf_counter() - start,
    }


def loglik_metrics(
    model: LatentModel, sampler: Sampler, x: Tensor, p: LatentPreset, gen: torch.Generator, check: bool = True
) -> tuple[dict[str, Any], Tensor]:
    """Metrics of the test log-likelihood (nats per image) of images x and the per-image log p(x) (N,).
    check: also estimate log p~(x) by AIS on the first ``p.ais_check_images`` images and compare."""
    start = time.perf_counter()
    starts = torch.stack(
        [apply_batched(lambda xb: sampler.infer(model, xb, gen), x, 256, grad=True) for _ in range(p.loglik_starts)], 1
    )
    cfg = LikelihoodConfig(n_samples=p.loglik_samples, newton_steps=p.loglik_newton_steps)
    est = importance_log_marginal(model, x, starts, cfg, gen)
    log_m, log_m_se = est.log_z, est.se
    is_time = time.perf_counter() - start
    z = prior_log_z(model, sampler, p, gen)
    out = {
        **combine(log_m, log_m_se, z["log_z"], z["log_z_se"]),
        **z,
        **weight_diagnostics(est),
        "loglik_is_samples": est.diagnostics["n_draws"],
        "loglik_is_starts": p.loglik_starts,
        "loglik_is_wall_time_s": is_time,
        "n_loglik_images": x.shape[0],
    }
    if check:
        out["loglik_ais_check"] = ais_check(model, x, log_m, log_m_se, p, gen)
    return out, log_m - z["log_z"]


def weight_diagnostics(est: Estimate) -> dict[str, Any]:
    """Per-image weight diagnostics of the IS log-likelihood (lists over the test images) and their extremes:
    Kish ESS of the weights, the largest normalised weight, Pareto k-hat, and the p-value of the starts'
    agreement (:func:`~ebmlab.latent.likelihood.stratified_log_marginal`)."""
    d = est.diagnostics
    p_start = d["start_p_value"]
    assert est.ess is not None  # the IS log-likelihood reports its ESS
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


KHAT_LIMIT = 0.7
FAMILY_ALPHA = 0.01  # the starts' agreement: Bonferroni over the images, 1% family-wise false alarms


def is_warnings(r: dict[str, Any]) -> list[str]:
    """Warnings, with what to do, when the IS log-likelihood's weights say that its SE may not hold: k-hat above
    0.7 on some image, or independent starts that disagree beyond their SEs (a start's own IS estimate differs
    from the others': the starts found different posterior regions)."""
    out = []
    n = len(r.get("loglik_is_khat", []))
    bad = r.get("loglik_is_n_khat_above_0.7", 0)
    if bad:
        out.append(
            f"WARNING importance weights are heavy-tailed (Pareto k-hat > {KHAT_LIMIT}) on {bad} of {n} test images "
            f"(max {r['loglik_is_khat_max']:.2f}): their SEs understate the error; raise loglik_samples or "
            "loglik_newton_steps, or check those images with the AIS check"
        )
    p_min = r.get("loglik_is_start_p_min")
    if p_min is not None and p_min < FAMILY_ALPHA / max(n, 1):
        out.append(
            f"WARNING the IS starts disagree beyond their SEs on some test image (agreement p = {p_min:.1e} < "
            f"{FAMILY_ALPHA}/{n}): the starts reach different posterior regions and a region none of them found may "
            "be missing; raise loglik_starts (more sampler latents per image) and compare with the AIS check"
        )
    return out


def loglik_warnings(runs: dict[Any, dict[str, Any]]) -> list[str]:
    """One line per finished run and failed check of its log-likelihood: the weight diagnostics
    (:func:`is_warnings`), the AIS check of log p~(x) (``agree`` false) or, on the toy, the quadrature value
    (beyond 3 SE).  Empty when every check passes."""
    out = []
    for seed, r in sorted(runs.items()):
        out += [f"seed {seed}: {w}" for w in is_warnings(r)]
        check = r.get("loglik_ais_check")
        if check is not None and not check["agree"]:
            out.append(
                f"seed {seed}: WARNING the AIS check of log p~(x) disagrees with importance sampling by "
                f"{check['is_minus_ais_in_se']:+.1f} SE; the test log-likelihood is not verified"
            )
        z_quad = r.get("loglik_minus_quadrature_in_se")
        if z_quad is not None and abs(z_quad) > 3.0:
            out.append(f"seed {seed}: WARNING the test log-likelihood is {z_quad:+.1f} SE from its quadrature value")
    return out
