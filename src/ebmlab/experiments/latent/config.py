"""Presets of ``ebmlab latent`` (value objects of :mod:`.settings`) and the rules derived from them (the EMA rate
scaled to the run length, the anomaly learning rates, the energy regulariser of each sampler)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ...latent.evidence import EvidenceConfig
from ...latent.laplace_proposal import LikelihoodConfig
from ...latent.weighted_prior import WeightedPriorConfig
from ...sampling.smc import Move
from .settings import (
    AmortiserSettings,
    AnomalySettings,
    ChainSettings,
    DataSettings,
    LatentPreset,
    ModelSettings,
    ToyPriorSettings,
    ToySettings,
    TrainingSettings,
)

TASKS = ("toy", "toy-prior", "generate", "anomaly")


def ema_rate(iters: int, ema_every: int, half_life: float | None, rho_ref: float) -> float:
    """EMA rate rho per update (every ``ema_every`` iterations) for a run of ``iters`` iterations.

    The EMA's half-life is ``half_life * iters`` iterations, i.e. rho = 1 - 2^(-ema_every / (half_life iters)),
    but never slower than the reference's rate: rho >= rho_ref (DAMC's 0.005 per 10 iterations, a half-life
    of about 1 380 iterations, applies to runs of >= 13 800 iterations at half_life 0.1).  half_life None:
    rho_ref itself.
    """
    if iters < 1 or ema_every < 1:
        raise ValueError(f"iters and ema_every must be >= 1, got {iters}, {ema_every}")
    if half_life is None:
        return rho_ref
    return max(rho_ref, 1.0 - 0.5 ** (ema_every / (half_life * iters)))


def ema_half_life_iters(rho: float, ema_every: int) -> float:
    """Half-life in iterations of an EMA with rate rho per update every ``ema_every`` iterations."""
    return ema_every * math.log(0.5) / math.log1p(-rho) if rho < 1 else 0.0


def learning_rates(p: LatentPreset, anomaly: bool) -> tuple[float, float, float]:
    """(G, E, Q) learning rates of a task."""
    t = p.training
    return p.anomaly.lrs if anomaly and p.anomaly.lrs is not None else (t.lr_g, t.lr_e, t.lr_q)


QUICK = LatentPreset(
    amortiser=AmortiserSettings(diffusion_steps=5, nf=1, t_dim=16, cond_dim=16, nif=4, q_updates=1, ema_every=1),
    chains=ChainSettings(prior_steps=5, lebm_post_steps=3, damc_post_steps=3, eval_prior_steps=5, refine_steps=2),
    model=ModelSettings(latent_dim=4, ngf=2, ebm_hidden=16),
    training=TrainingSettings(batch_size=16, iters=4, eval_every=2, diag_every=2, diag_n=16, checkpoint_every=2),
    data=DataSettings(train_per_digit=8, test_per_digit=4, classifier_per_digit=10, classifier_epochs=1, n_generate=40),
    anomaly=AnomalySettings(latent_dim=4, refine_steps=2, max_test=60),
    toy=ToySettings(iters=4, batch=100, chain_steps=5, ref_steps=50, eval_n=300, eval_every=2, nf=1),
    toy_prior=ToyPriorSettings(iters=4, batch=50, post_steps=5, n=200, hidden=16, test_n=50, true_n=20000),
    walkers=WeightedPriorConfig(32, 32, Move("mala", 0.08, n_steps=2)),
    loglik=EvidenceConfig(
        LikelihoodConfig(n_samples=9, newton_steps=1), starts=2, prior_walkers=50, prior_steps=1, check_images=2,
        check_chains=12, check_steps=2, check_pilot_steps=1, check_cess=0.8,
    ),
)  # fmt: skip
PAPER = LatentPreset(
    amortiser=AmortiserSettings(diffusion_steps=100, nf=4, t_dim=128, cond_dim=1024, nif=128, q_updates=6),
    chains=ChainSettings(lebm_post_steps=20, damc_post_steps=30),
    model=ModelSettings(latent_dim=100, ngf=128, sigma=0.1),
    training=TrainingSettings(
        batch_size=128, iters=100000, eval_every=500, diag_every=500, diag_n=256, checkpoint_every=1000
    ),
    data=DataSettings(train_per_digit=None, classifier_per_digit=300, classifier_epochs=10, n_generate=10000),
    anomaly=AnomalySettings(latent_dim=8, lrs=(1e-4, 5e-5, 1e-4), pool_train=True),
    toy=ToySettings(iters=3000),
)  # fmt: skip
# the official LEBM code's settings (Pang et al. 2020) at cpu-preset sizes: LEBM only
LEBM_OFFICIAL = LatentPreset(
    model=ModelSettings(sigma=0.3, ebm_activation="gelu"),
    training=TrainingSettings(lr_g=1e-4, lr_e=2e-5, lebm_energy_reg=0.0, clip=None),
    anomaly=AnomalySettings(sigma=0.3, sigma_per_digit=()),
    allowed_samplers=("lebm",),
)

PRESETS: dict[str, LatentPreset] = {
    "cpu": LatentPreset(),
    "quick": QUICK,
    "paper": PAPER,
    "lebm-official": LEBM_OFFICIAL,
}
DEFAULT_SEEDS = {"quick": [0], "cpu": [0], "paper": [0, 1, 2], "lebm-official": [0]}


def preset(
    name: str,
    samplers: Sequence[str],
    iters: int | None = None,
    posterior: str | None = None,
    energy_reg: float | None = None,
) -> LatentPreset:
    """The named preset for ``samplers``, with ``iters`` (also the toys') overriding its length, ``posterior`` the
    jarzynski sampler's posterior chains and ``energy_reg`` the prior loss's regulariser."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[name]
    other = [s for s in samplers if s not in p.allowed_samplers]
    if other:
        raise ValueError(
            f"preset {name!r} is for --sampler {', '.join(p.allowed_samplers)} only, not {', '.join(other)}"
        )
    if iters is not None:
        if iters < 1:
            raise ValueError(f"--iters must be >= 1, got {iters}")
        p = replace(
            p,
            training=replace(p.training, iters=iters),
            toy=replace(p.toy, iters=iters),
            toy_prior=replace(p.toy_prior, iters=iters),
        )
    if posterior is not None:
        if "jarzynski" not in samplers:
            raise ValueError(
                f"--posterior chooses the jarzynski sampler's posterior chains; not for --sampler {','.join(samplers)}"
            )
        p = replace(p, posterior=posterior)
    if energy_reg is not None:
        p = replace(p, training=replace(p.training, energy_reg=energy_reg))
    return p


def energy_reg_of(p: LatentPreset, sampler: str) -> float:
    """alpha of alpha (E[E(z_pos)^2] + E[E(z_neg)^2]) in the prior loss: ``training.energy_reg`` when set, else
    ``training.lebm_energy_reg`` for LEBM posterior-and-prior chains and 0 for DAMC and the weighted prior."""
    t = p.training
    if t.energy_reg is not None:
        return t.energy_reg
    return t.lebm_energy_reg if sampler == "lebm" else 0.0
