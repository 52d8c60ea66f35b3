"""Latent samplers: short-run Langevin (LEBM) and Diffusion-Amortized MCMC (DAMC).

Langevin as in both papers' code: z <- z - (s^2/2) grad U(z) + s xi, i.e. the library's ULA kernel with
step h = s^2/2 and its default noise sqrt(2h) = s.  Both samplers offer the same four operations, used by
the one training loop (:mod:`ebmlab.latent.trainer`) and the experiments:

- ``training_chains(model, x, gen) -> (z_pos, z_neg)``: posterior and prior samples for theta's update;
- ``learn(x, z_pos, gen) -> dict``: update the sampler on the refined posterior samples (DAMC only);
- ``infer(model, x, gen, refine_steps=None) -> z``: latents for reconstruction and anomaly scores;
- ``generate(model, n, gen) -> z``: latents for generation.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from ..sampling.langevin import EnergyFn, energy_and_grad, init_state, ula
from .diffusion import LatentDiffusion, ema_update
from .models import LatentModel


def langevin(energy: EnergyFn, z: Tensor, n_steps: int, s: float, generator: torch.Generator) -> Tensor:
    """``n_steps`` noisy Langevin steps z <- z - (s^2/2) grad U + s xi (ULA, h = s^2/2) from z (N, d)."""
    state = init_state(energy, z)
    for _ in range(n_steps):
        state, _ = ula(state, energy, 0.5 * s * s, generator, weighted=False)  # no weights: skip the increment
    return state.x


def gradient_descent(energy: EnergyFn, z: Tensor, n_steps: int, lr: float) -> Tensor:
    """``n_steps`` noise-free steps z <- z - lr grad U(z) (the mode-seeking refinement of DAMC's evaluation)."""
    for _ in range(n_steps):
        _, g = energy_and_grad(energy, z)
        z = z - lr * g
    return z.detach()


def _randn(n: int, model: LatentModel, generator: torch.Generator) -> Tensor:
    p = next(model.parameters())
    return torch.randn(n, model.latent_dim, generator=generator, device=p.device, dtype=p.dtype)


@dataclass(frozen=True)
class ChainConfig:
    """Langevin settings: prior chains (steps, s), posterior chains (steps, s); eval_prior_steps for
    prior LD generation; refine_steps noise-free steps (lr s_post^2/2) after an amortised init."""

    prior_steps: int = 60
    prior_s: float = 0.4
    post_steps: int = 20
    post_s: float = 0.1
    eval_prior_steps: int = 100
    refine_steps: int = 10

    def __post_init__(self) -> None:
        for name in ("prior_steps", "post_steps", "eval_prior_steps", "refine_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("prior_s", "post_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class LEBMSampler:
    """Short-run LEBM: every chain restarts from N(0, I) and runs a fixed number of Langevin steps."""

    name = "lebm"

    def __init__(self, chains: ChainConfig = ChainConfig()):
        self.chains = chains

    def posterior_chains(self, model: LatentModel, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(z0 ~ N(0, I), z_pos = ``post_steps`` posterior Langevin steps from z0)."""
        c = self.chains
        z0 = _randn(x.shape[0], model, generator)
        return z0, langevin(model.posterior_energy(x), z0, c.post_steps, c.post_s, generator)

    def training_chains(self, model: LatentModel, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        c = self.chains
        z_pos = self.posterior_chains(model, x, generator)[1]
        z_neg = langevin(model.prior_energy, _randn(x.shape[0], model, generator), c.prior_steps, c.prior_s, generator)
        return z_pos, z_neg

    def prior_weights(self) -> None:
        """The prior samples of :meth:`training_chains` carry equal weights."""
        return None

    def learn(self, x: Tensor, z_pos: Tensor, generator: torch.Generator) -> dict[str, float]:
        return {}

    def infer(
        self, model: LatentModel, x: Tensor, generator: torch.Generator, refine_steps: int | None = None
    ) -> Tensor:
        """Noisy posterior Langevin from N(0, I) (``refine_steps`` is DAMC's and is ignored here)."""
        return self.posterior_chains(model, x, generator)[1]

    def generate(self, model: LatentModel, n: int, generator: torch.Generator) -> Tensor:
        """Prior Langevin from N(0, I), ``eval_prior_steps`` steps."""
        c = self.chains
        return langevin(model.prior_energy, _randn(n, model, generator), c.eval_prior_steps, c.prior_s, generator)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Short-run chains carry no learned state: only the empty dict of :meth:`state_dict` fits."""
        if state:
            raise ValueError(f"LEBMSampler has no state to load; got keys {sorted(state)} (a DAMC checkpoint?)")


@dataclass(frozen=True)
class DAMCConfig:
    """DAMC sampler training: q_updates AdamW steps per iteration (lr, betas, weight_decay, clip), EMA
    phi_bar <- rho phi + (1 - rho) phi_bar every ema_every iterations; prior_init "posterior+noise" (2B
    chains from [Q_bar(x); N(0, I)], image scripts) or "posterior" (B chains from Q_bar(x), anomaly script);
    cond_loss "dropout" (mask ~ Bernoulli(1 - p_mask)) or "both" (sum of a fully conditional and a fully
    unconditional loss, anomaly script)."""

    q_updates: int = 6
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4
    clip: float = 100.0
    ema_rho: float = 0.005
    ema_every: int = 10
    prior_init: str = "posterior+noise"
    cond_loss: str = "dropout"

    def __post_init__(self) -> None:
        if self.q_updates < 1 or self.ema_every < 1:
            raise ValueError(f"q_updates and ema_every must be >= 1, got {self.q_updates}, {self.ema_every}")
        if self.prior_init not in ("posterior+noise", "posterior"):
            raise ValueError(f"prior_init must be 'posterior+noise' or 'posterior', got {self.prior_init!r}")
        if self.cond_loss not in ("dropout", "both"):
            raise ValueError(f"cond_loss must be 'dropout' or 'both', got {self.cond_loss!r}")


class DAMCSampler:
    """Diffusion-amortised MCMC: chains start from the EMA diffusion model Q_bar and a few Langevin steps
    refine them; the online model Q is then fitted to the refined posterior samples.  Q serves evaluation."""

    name = "damc"

    def __init__(
        self, q: LatentDiffusion, chains: ChainConfig = ChainConfig(post_steps=30), config: DAMCConfig = DAMCConfig()
    ):
        self.q, self.chains, self.config = q, chains, config
        self.q_ema = copy.deepcopy(q).requires_grad_(False).eval()
        self.optimizer = torch.optim.AdamW(
            q.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.updates = 0

    def _check(self, model: LatentModel) -> None:
        if model.latent_dim != self.q.latent_dim:
            raise ValueError(
                f"latent size mismatch: model has d={model.latent_dim}, "
                f"the diffusion sampler d={self.q.latent_dim}; build them with the same d"
            )

    def posterior_chains(self, model: LatentModel, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(z0 ~ Q_bar(z | x), z_pos = posterior Langevin from z0)."""
        self._check(model)
        z0 = self.q_ema.sample(x.shape[0], generator, x=x)
        c = self.chains
        return z0, langevin(model.posterior_energy(x), z0, c.post_steps, c.post_s, generator)

    def training_chains(self, model: LatentModel, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        z0, z_pos = self.posterior_chains(model, x, generator)
        starts = z0 if self.config.prior_init == "posterior" else torch.cat([z0, _randn(x.shape[0], model, generator)])
        c = self.chains
        return z_pos, langevin(model.prior_energy, starts, c.prior_steps, c.prior_s, generator)

    def prior_weights(self) -> None:
        """The prior samples of :meth:`training_chains` carry equal weights."""
        return None

    def learn(self, x: Tensor, z_pos: Tensor, generator: torch.Generator) -> dict[str, float]:
        """``q_updates`` optimiser steps of the eps-loss on (x, z_pos); EMA update every ``ema_every`` calls."""
        cfg = self.config
        self.q.train()
        total = 0.0
        for _ in range(cfg.q_updates):
            self.optimizer.zero_grad(set_to_none=True)
            if cfg.cond_loss == "both":
                n = x.shape[0]
                ones = torch.ones(n, dtype=torch.bool, device=x.device)
                loss = self.q.loss(z_pos, x, generator, mask=ones) + self.q.loss(z_pos, x, generator, mask=~ones)
            else:
                loss = self.q.loss(z_pos, x, generator)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), cfg.clip)
            self.optimizer.step()
            total += float(loss.detach())
        self.q.eval()
        self.updates += 1
        if self.updates % cfg.ema_every == 0:
            ema_update(self.q_ema, self.q, cfg.ema_rho)
        return {"q_loss": total / cfg.q_updates}

    def infer(
        self, model: LatentModel, x: Tensor, generator: torch.Generator, refine_steps: int | None = None
    ) -> Tensor:
        """z0 ~ Q(z | x), then ``refine_steps`` (default chains.refine_steps) noise-free steps, lr s_post^2/2."""
        self._check(model)
        c = self.chains
        z0 = self.q.sample(x.shape[0], generator, x=x)
        steps = c.refine_steps if refine_steps is None else refine_steps
        return gradient_descent(model.posterior_energy(x), z0, steps, 0.5 * c.post_s**2)

    def generate(self, model: LatentModel, n: int, generator: torch.Generator) -> Tensor:
        """z ~ Q(z) (the null-conditioned diffusion model), no Langevin refinement."""
        self._check(model)
        return self.q.sample(n, generator)

    def state_dict(self) -> dict[str, Any]:
        return {
            "q": self.q.state_dict(),
            "q_ema": self.q_ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.q.load_state_dict(state["q"])
        self.q_ema.load_state_dict(state["q_ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])


def config_dict(sampler: LEBMSampler | DAMCSampler) -> dict[str, Any]:
    """The sampler's settings as plain data (for metrics.json)."""
    out: dict[str, Any] = {"name": sampler.name, "chains": asdict(sampler.chains)}
    if isinstance(sampler, DAMCSampler):
        out["damc"] = asdict(sampler.config)
        out["diffusion_steps"] = sampler.q.n_steps
    return out
