"""Diagnostics of a latent EBM's samplers: the per-pixel reconstruction error of latents, and how much the
training chains' starts (amortised or N(0, I)) help the posterior Langevin steps."""

from __future__ import annotations

import torch
from torch import Tensor

from ..metrics.classifier import apply_batched
from .models import LatentModel
from .samplers import DAMCSampler, langevin
from .weighted_prior import Sampler, posterior_of


def pixel_mse(model: LatentModel, x: Tensor, z: Tensor) -> float:
    """Per-pixel mean squared error of g(z) against x (images in [-1, 1]); x (N, *x_shape), z (N, d)."""
    with torch.no_grad():
        return float(apply_batched(model.generator, z, 256).sub(x).square().mean())


def amortisation_diagnostic(model: LatentModel, sampler: Sampler, x: Tensor, gen: torch.Generator) -> dict[str, float]:
    """Per-pixel reconstruction MSE on images x of: the training chains (their posterior LD steps from their
    starts) and the same LD from N(0, I) starts (``mse_normal_start``); DAMC also the EMA sampler's draws
    z0 ~ Q_bar(z | x) before any LD (``mse_ema_q``).  LEBM's training chains are the N(0, I) starts."""
    c = sampler.chains
    z_normal = torch.randn(x.shape[0], model.latent_dim, generator=gen, device=x.device)
    ld = langevin(model.posterior_energy(x), z_normal, c.post_steps, c.post_s, gen)
    out = {"mse_normal_start": pixel_mse(model, x, ld)}
    if isinstance(posterior_of(sampler), DAMCSampler):
        z0, z_pos = sampler.posterior_chains(model, x, gen)
        out |= {"mse_ema_q": pixel_mse(model, x, z0), "mse_chains": pixel_mse(model, x, z_pos)}
    else:
        out["mse_chains"] = out["mse_normal_start"]
    return out
