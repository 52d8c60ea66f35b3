"""Settings of ``ebmlab latent``: the presets, their validation, and the rules derived from them (the EMA rate
scaled to the run length, the per-digit anomaly sigma, the anomaly learning rates)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

TASKS = ("toy", "toy-prior", "generate", "anomaly")
SAMPLERS = ("lebm", "damc", "jarzynski")
POSTERIORS = ("lebm", "damc")  # the posterior chains of the jarzynski sampler
EBM_ACTIVATIONS = ("leaky_relu", "gelu")


@dataclass(frozen=True)
class LatentPreset:
    """All settings of one preset (see docs/latent.md for the design of each)."""

    # diffusion amortiser (DAMC)
    diffusion_steps: int = 20
    nf: int = 2
    t_dim: int = 64
    cond_dim: int = 128
    nif: int = 8
    q_updates: int = 3
    ema_rho: float = 0.005  # the reference's rate per EMA update: the long-run limit of the rule below
    ema_every: int = 10
    ema_half_life: float | None = 0.1  # EMA half-life as a fraction of the run's iterations; None: rho fixed
    # toy
    toy_iters: int = 300
    toy_batch: int = 500
    toy_chain_steps: int = 50
    toy_ref_steps: int = 2000
    toy_eval_n: int = 5000
    toy_eval_every: int = 100
    toy_ema_rho: float = 0.75
    toy_nf: int = 4
    # MNIST model
    latent_dim: int = 16
    anomaly_latent_dim: int = 8
    ngf: int = 4
    ebm_hidden: int = 200
    ebm_activation: str = "leaky_relu"
    sigma: float = 0.3
    anomaly_sigma: float = 1.0
    anomaly_sigma_per_digit: tuple[tuple[int, float], ...] = ((1, 0.1),)  # (digit, sigma): the reference's
    batch_size: int = 64
    iters: int = 500
    lr_g: float = 2e-4
    lr_e: float = 1e-4
    lr_q: float = 2e-4
    anomaly_lrs: tuple[float, float, float] | None = None  # (G, E, Q) of the anomaly task; None: lr_g, lr_e, lr_q
    clip: float | None = 100.0  # gradient-norm clip of G and E (None: no clipping)
    lebm_energy_reg: float = 1e-3
    energy_reg: float | None = None  # alpha of the prior loss's regulariser for any sampler (None: energy_reg_of's)
    prior_steps: int = 60
    lebm_post_steps: int = 20
    damc_post_steps: int = 20
    eval_prior_steps: int = 100
    refine_steps: int = 10
    anomaly_refine_steps: int = 5
    eval_every: int = 100
    diag_every: int = 50  # iterations between amortisation diagnostics
    diag_n: int = 128  # training images of the diagnostic
    # data sizes (per digit for generate; None = all)
    train_per_digit: int | None = 400
    test_per_digit: int = 100
    classifier_per_digit: int = 350
    classifier_epochs: int = 4
    n_generate: int = 1000
    anomaly_max_test: int | None = None
    anomaly_pool_train: bool = False  # pool the 60k training images with the test set when --data-dir has them
    checkpoint_every: int = 100
    samplers: tuple[str, ...] = SAMPLERS  # the samplers this preset is meant for
    # Jarzynski-weighted prior walkers (--sampler jarzynski)
    posterior: str = "lebm"  # its posterior chains: lebm (short-run) or damc (amortised)
    prior_walkers: int = 256
    log_z_walkers: int = 256
    prior_kernel: str = "mala"
    prior_walker_steps: int = 5
    # test log-likelihood (importance sampling) and the AIS estimates of log Z_alpha and of the marginal
    loglik_samples: int = 261  # 29 for each of loglik_starts Student-t components and a defensive N(0, I)
    loglik_starts: int = 8  # 2 starts were 0.3 nats low on MNIST (measured against 32 and 128 starts)
    loglik_newton_steps: int = 3
    ais_prior_walkers: int = 1000
    ais_prior_moves: int = 5  # log Z_alpha by tempered SMC: MALA steps per temperature (pilot: 3)
    # the AIS check of log p~(x): per image, tempered SMC from N(0, I) on a schedule adapted by a pilot run
    ais_check_images: int = 8
    ais_check_chains: int = 64
    ais_check_moves: int = 10  # preconditioned MALA steps per temperature (the pilot: ais_check_pilot_moves)
    ais_check_pilot_moves: int = 3
    ais_check_cess: float = 0.95  # conditional ESS per temperature step
    # toy prior: the DAMC toy's fixed generator and pinwheel latents, with a learned 2-D EBM prior
    toy_prior_iters: int = 300
    toy_prior_batch: int = 200
    toy_prior_post_steps: int = 30
    toy_prior_n: int = 5000
    toy_prior_hidden: int = 128
    toy_prior_lr_e: float = 1e-3
    toy_prior_test_n: int = 1000
    toy_prior_true_n: int = 1_000_000  # exact pinwheel draws for the true cell probabilities

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int" and v < 1:
                raise ValueError(f"preset field {f.name} must be >= 1, got {v}")
        for name in ("sigma", "anomaly_sigma", "lr_g", "lr_e", "lr_q", "ema_rho"):
            if not getattr(self, name) > 0:
                raise ValueError(f"preset field {name} must be > 0, got {getattr(self, name)}")
        if self.clip is not None and not self.clip > 0:
            raise ValueError(f"preset field clip must be > 0 (or None: no clipping), got {self.clip}")
        if self.energy_reg is not None and not (math.isfinite(self.energy_reg) and self.energy_reg >= 0):
            raise ValueError(f"energy_reg (--energy-reg) must be a finite number >= 0, got {self.energy_reg}")
        if not 0 < self.ais_check_cess < 1:
            raise ValueError(f"preset field ais_check_cess must lie in (0, 1), got {self.ais_check_cess}")
        if self.ema_rho > 1:
            raise ValueError(f"preset field ema_rho must lie in (0, 1], got {self.ema_rho}")
        if self.ema_half_life is not None and not 0 < self.ema_half_life <= 1:
            raise ValueError(f"ema_half_life is a fraction of the run in (0, 1], got {self.ema_half_life}")
        if self.ebm_activation not in EBM_ACTIVATIONS:
            raise ValueError(f"ebm_activation must be one of {list(EBM_ACTIVATIONS)}, got {self.ebm_activation!r}")
        for digit, s in self.anomaly_sigma_per_digit:
            if digit not in range(10) or not s > 0:
                raise ValueError(f"anomaly_sigma_per_digit needs (digit 0-9, sigma > 0) pairs, got {(digit, s)}")
        if self.anomaly_lrs is not None and (len(self.anomaly_lrs) != 3 or min(self.anomaly_lrs) <= 0):
            raise ValueError(f"anomaly_lrs must be three rates (G, E, Q) > 0, got {self.anomaly_lrs}")
        if self.posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {list(POSTERIORS)}, got {self.posterior!r}")
        if not self.samplers or set(self.samplers) - set(SAMPLERS):
            raise ValueError(f"samplers must be a non-empty subset of {list(SAMPLERS)}, got {self.samplers}")


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


def anomaly_sigma(p: LatentPreset, digit: int) -> float:
    """The observation sigma of an anomaly run with held-out ``digit``: the per-digit value, else anomaly_sigma."""
    return dict(p.anomaly_sigma_per_digit).get(digit, p.anomaly_sigma)


def learning_rates(p: LatentPreset, anomaly: bool) -> tuple[float, float, float]:
    """(G, E, Q) learning rates of a task."""
    return p.anomaly_lrs if anomaly and p.anomaly_lrs is not None else (p.lr_g, p.lr_e, p.lr_q)


_QUICK: dict[str, Any] = dict(
    diffusion_steps=5, nf=1, t_dim=16, cond_dim=16, nif=4, q_updates=1, ema_every=1,
    toy_iters=4, toy_batch=100, toy_chain_steps=5, toy_ref_steps=50, toy_eval_n=300, toy_eval_every=2, toy_nf=1,
    latent_dim=4, anomaly_latent_dim=4, ngf=2, ebm_hidden=16, batch_size=16, iters=4, prior_steps=5,
    lebm_post_steps=3, damc_post_steps=3, eval_prior_steps=5, refine_steps=2, anomaly_refine_steps=2,
    eval_every=2, diag_every=2, diag_n=16, train_per_digit=8, test_per_digit=4, classifier_per_digit=10,
    classifier_epochs=1, n_generate=40, anomaly_max_test=60, checkpoint_every=2,
    prior_walkers=32, log_z_walkers=32, prior_walker_steps=2, loglik_samples=9, loglik_starts=2, loglik_newton_steps=1,
    ais_prior_walkers=50, ais_prior_moves=1, ais_check_images=2, ais_check_chains=12, ais_check_moves=2,
    ais_check_pilot_moves=1, ais_check_cess=0.8,
    toy_prior_iters=4, toy_prior_batch=50, toy_prior_post_steps=5, toy_prior_n=200, toy_prior_hidden=16,
    toy_prior_test_n=50, toy_prior_true_n=20000,
)  # fmt: skip
_PAPER: dict[str, Any] = dict(
    diffusion_steps=100, nf=4, t_dim=128, cond_dim=1024, nif=128, q_updates=6, toy_iters=3000,
    latent_dim=100, anomaly_latent_dim=8, ngf=128, sigma=0.1, batch_size=128, iters=100000,
    anomaly_lrs=(1e-4, 5e-5, 1e-4), lebm_post_steps=20, damc_post_steps=30, eval_every=500, diag_every=500,
    diag_n=256, train_per_digit=None, classifier_per_digit=300, classifier_epochs=10, n_generate=10000,
    anomaly_pool_train=True, checkpoint_every=1000,
)  # fmt: skip
# the official LEBM code's settings (Pang et al. 2020) at cpu-preset sizes: LEBM only
_LEBM_OFFICIAL: dict[str, Any] = dict(
    sigma=0.3, anomaly_sigma=0.3, anomaly_sigma_per_digit=(), lr_g=1e-4, lr_e=2e-5, ebm_activation="gelu",
    lebm_energy_reg=0.0, clip=None, samplers=("lebm",),
)  # fmt: skip

PRESETS: dict[str, LatentPreset] = {
    "cpu": LatentPreset(),
    "quick": LatentPreset(**_QUICK),
    "paper": LatentPreset(**_PAPER),
    "lebm-official": LatentPreset(**_LEBM_OFFICIAL),
}
DEFAULT_SEEDS = {"quick": [0], "cpu": [0], "paper": [0, 1, 2], "lebm-official": [0]}


def preset(
    name: str, sampler: str, iters: int | None = None, posterior: str | None = None, energy_reg: float | None = None
) -> LatentPreset:
    """The named preset for ``sampler``, with ``iters`` (also the toys') overriding its length,
    ``posterior`` the jarzynski sampler's posterior chains and ``energy_reg`` the prior loss's regulariser."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    p = PRESETS[name]
    if sampler not in p.samplers:
        raise ValueError(f"preset {name!r} is for --sampler {', '.join(p.samplers)} only, not {sampler}")
    if iters is not None:
        if iters < 1:
            raise ValueError(f"--iters must be >= 1, got {iters}")
        p = replace(p, iters=iters, toy_iters=iters, toy_prior_iters=iters)
    if posterior is not None:
        if sampler != "jarzynski":
            raise ValueError(
                f"--posterior chooses the jarzynski sampler's posterior chains; not for --sampler {sampler}"
            )
        p = replace(p, posterior=posterior)
    if energy_reg is not None:
        p = replace(p, energy_reg=energy_reg)
    return p


def energy_reg_of(p: LatentPreset, sampler: str) -> float:
    """alpha of alpha (E[E(z_pos)^2] + E[E(z_neg)^2]) in the prior loss: ``p.energy_reg`` when set, else
    ``p.lebm_energy_reg`` for LEBM posterior-and-prior chains and 0 for DAMC and the weighted prior."""
    if p.energy_reg is not None:
        return p.energy_reg
    return p.lebm_energy_reg if sampler == "lebm" else 0.0
