"""Building blocks of the MNIST tasks of ``ebmlab latent``: model and sampler from a preset, the training
run with periodic evaluations and amortisation diagnostics (:mod:`ebmlab.latent.diagnostics`), and the run's
description."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ...latent.diagnostics import amortisation_diagnostic
from ...latent.diffusion import ConvEncoder, LatentDiffusion
from ...latent.models import ConvGenerator, LatentEBMPrior, LatentModel
from ...latent.samplers import ChainConfig, DAMCConfig, DAMCSampler, LEBMSampler
from ...latent.trainer import LatentTrainer, LoopConfig
from ...latent.weighted_prior import JarzynskiPriorSampler, Sampler, posterior_of, sampler_settings
from ..study import RunContext, eval_generator
from .config import ema_half_life_iters, ema_rate, energy_reg_of, learning_rates
from .settings import LatentPreset

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "gelu": nn.GELU}


def build_mnist(
    p: LatentPreset,
    sampler_name: str,
    latent_dim: int,
    sigma: float,
    refine_steps: int,
    device: torch.device,
    anomaly: bool = False,
) -> tuple[LatentModel, Sampler, LoopConfig]:
    """Model, sampler and loop settings of one MNIST run on ``device`` (set the global torch seed first).

    anomaly=True takes the DAMC anomaly script's choices: prior chains from Q_bar(x) only, each Q step the
    sum of a fully conditional and a fully unconditional loss, no weight decay; and the anomaly lrs.
    ``jarzynski``: weighted prior walkers (``p.walkers``) with ``p.posterior``'s posterior chains, the
    prior's output layer at zero.  The energy regulariser: :func:`energy_reg_of`.
    """
    lr_g, lr_e, lr_q = learning_rates(p, anomaly)
    weighted = sampler_name == "jarzynski"
    prior = LatentEBMPrior(
        latent_dim, (p.model.ebm_hidden,) * 2, activation=ACTIVATIONS[p.model.ebm_activation], zero_init_output=weighted
    )
    model = LatentModel(ConvGenerator(latent_dim, p.model.ngf), prior, sigma).to(device)
    if (p.posterior if weighted else sampler_name) == "lebm":
        sampler: LEBMSampler | DAMCSampler = LEBMSampler(chain_config(p, p.chains.lebm_post_steps, refine_steps))
    else:
        a = p.amortiser
        q = LatentDiffusion(
            latent_dim, ConvEncoder(a.cond_dim, a.nif), a.cond_dim, nf=a.nf, t_dim=a.t_dim, n_steps=a.diffusion_steps
        ).to(device)
        sampler = damc_sampler(p, q, refine_steps, lr_q, anomaly)
    chosen: Sampler = JarzynskiPriorSampler(sampler, p.walkers) if weighted else sampler
    loop = LoopConfig(
        batch_size=p.training.batch_size,
        lr_g=lr_g,
        lr_e=lr_e,
        energy_reg=energy_reg_of(p, sampler_name),
        clip=math.inf if p.training.clip is None else p.training.clip,
    )
    return model, chosen, loop


def mnist_trainer(
    p: LatentPreset,
    sampler_name: str,
    x_train: Tensor,
    latent_dim: int,
    sigma: float,
    refine_steps: int,
    seed: int,
    device: torch.device,
    anomaly: bool = False,
) -> LatentTrainer:
    """The trainer of one seeded MNIST run on images ``x_train`` (N, 1, 28, 28): seeds torch's global RNG (the
    initial weights) and the training stream on ``device`` with ``seed``, then builds as :func:`build_mnist`."""
    torch.manual_seed(seed)
    gen = torch.Generator(device).manual_seed(seed)
    model, sampler, loop = build_mnist(p, sampler_name, latent_dim, sigma, refine_steps, device, anomaly=anomaly)
    return LatentTrainer(model, sampler, x_train, loop, gen)


def chain_config(p: LatentPreset, post_steps: int, refine_steps: int) -> ChainConfig:
    """Langevin settings of a preset with the sampler's posterior and refinement steps."""
    c = p.chains
    return ChainConfig(
        prior_steps=c.prior_steps, post_steps=post_steps, eval_prior_steps=c.eval_prior_steps, refine_steps=refine_steps
    )


def damc_sampler(p: LatentPreset, q: LatentDiffusion, refine_steps: int, lr_q: float, anomaly: bool) -> DAMCSampler:
    """The DAMC sampler of a preset around the diffusion model q (anomaly: the anomaly script's choices)."""
    script: dict[str, Any] = dict(prior_init="posterior", cond_loss="both", weight_decay=0.0) if anomaly else {}
    a = p.amortiser
    rho = ema_rate(p.training.iters, a.ema_every, a.ema_half_life, a.ema_rho)
    return DAMCSampler(
        q,
        chain_config(p, p.chains.damc_post_steps, refine_steps),
        DAMCConfig(q_updates=a.q_updates, lr=lr_q, ema_rho=rho, ema_every=a.ema_every, **script),
    )


def train(
    trainer: LatentTrainer,
    p: LatentPreset,
    ctx: RunContext,
    desc: str,
    evaluate: Callable[[LatentTrainer], dict[str, Any]],
    diag_x: Tensor,
) -> float:
    """Run the loop to ``p.training.iters`` with checkpoints at ``ctx.checkpoint`` (continuing from it when
    ``ctx.resume``); returns the wall time.  History rows get ``evaluate(trainer)`` (key "eval") every
    ``eval_every`` iterations before the end and the amortisation diagnostic on ``diag_x`` (key "diag") every
    ``diag_every`` iterations and at the end."""
    seed, ckpt, t = ctx.seed, ctx.checkpoint, p.training
    if ctx.resume and ckpt.exists():
        trainer.resume(ckpt)

    def callback(tr: LatentTrainer, row: dict[str, Any]) -> None:
        k = tr.step_count
        if k % t.eval_every == 0 and k < t.iters:
            row["eval"] = evaluate(tr)
        if k % t.diag_every == 0 or k == t.iters:
            row["diag"] = amortisation_diagnostic(tr.model, tr.sampler, diag_x, eval_generator(seed, k, diag_x.device))

    start = time.perf_counter()
    trainer.run(
        t.iters,
        checkpoint_path=ckpt,
        checkpoint_every=t.checkpoint_every,
        desc=desc,
        callback=callback,
        progress=ctx.progress,
    )
    return time.perf_counter() - start


def rows_with(history: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """``{"step": iteration, **row[key]}`` for the history rows holding ``key`` (iteration = step + 1)."""
    return [{"step": r["step"] + 1, **r[key]} for r in history if key in r]


def diagnostic_summary(diag: list[dict[str, Any]]) -> dict[str, Any]:
    """The amortisation diagnostic's record for metrics.json: every row and the end-of-training verdict."""
    last = diag[-1]
    out: dict[str, Any] = {"amortisation": diag, "amortisation_final": last}
    if "mse_ema_q" in last:
        out["amortised_chains_beat_normal_start"] = last["mse_chains"] < last["mse_normal_start"]
    return out


def diag_images(x_train: Tensor, n: int, seed: int = 0) -> Tensor:
    """A fixed seeded subset of n training images (independent of the run seed) for the diagnostic."""
    g = torch.Generator().manual_seed(seed)
    return x_train[torch.randperm(x_train.shape[0], generator=g)[:n].to(x_train.device)]


def describe(model: LatentModel, sampler: Sampler, loop: LoopConfig) -> dict[str, Any]:
    """Sampler and loop settings and parameter counts of one run."""
    sizes = {
        "generator": sum(v.numel() for v in model.generator.parameters()),
        "ebm": sum(v.numel() for v in model.prior.parameters()),
    }
    posterior = posterior_of(sampler)
    out: dict[str, Any] = {"sampler_config": sampler_settings(sampler)}
    if isinstance(posterior, DAMCSampler):
        sizes["diffusion"] = sum(v.numel() for v in posterior.q.parameters())
        cfg = posterior.config
        out["ema"] = {
            "rho": cfg.ema_rho,
            "every": cfg.ema_every,
            "half_life_iters": ema_half_life_iters(cfg.ema_rho, cfg.ema_every),
        }
    return out | {
        "parameters": sizes,
        "sigma": model.sigma,
        "latent_dim": model.latent_dim,
        "learning_rates": {
            "g": loop.lr_g,
            "e": loop.lr_e,
            **({"q": posterior.config.lr} if isinstance(posterior, DAMCSampler) else {}),
        },
        "clip": loop.clip if math.isfinite(loop.clip) else None,
        "energy_reg": loop.energy_reg,
    }
