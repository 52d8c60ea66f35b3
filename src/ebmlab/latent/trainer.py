"""One training loop for latent-EBM models, whatever the sampler (LEBM or DAMC).

Each iteration, in the DAMC code's order: (1) a minibatch x; (2)-(4) posterior samples z_pos and prior
samples z_neg from the sampler; (5) the sampler learns from (x, z_pos) (DAMC; a no-op for LEBM); (6) one
generator step on L_G = mean_i sum_pixels (x_i - g(z_pos_i))^2; (7) one prior step on
L_E = mean E(z_pos) - mean E(z_neg) (+ energy_reg (mean E(z_pos)^2 + mean E(z_neg)^2)); (8) every
decay_every iterations all learning rates x decay (floored at lr_floor).  The means over z_neg are
weighted by the sampler's ``prior_weights()`` where its prior samples carry weights (the Jarzynski
walkers); a generator without trainable parameters (a fixed, known generator) skips step (6).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import DivergenceError
from ..training import checkpoint as ckpt
from ..training.loop import run_loop
from .models import LatentModel
from .weighted_prior import Sampler, sampler_settings


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation of theta: Adam (betas) for generator (lr_g) and prior (lr_e), gradient-norm clip,
    energy_reg (LEBM baseline 1e-3, DAMC 0), batch size, lr decay factor every decay_every iterations."""

    batch_size: int = 128
    lr_g: float = 2e-4
    lr_e: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    clip: float = 100.0
    energy_reg: float = 0.0
    decay: float = 0.99
    decay_every: int = 1000
    lr_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.decay_every < 1:
            raise ValueError(f"batch_size and decay_every must be >= 1, got {self.batch_size}, {self.decay_every}")
        if not (self.lr_g > 0 and self.lr_e > 0 and 0 < self.decay <= 1):
            raise ValueError("learning rates must be > 0 and decay in (0, 1]")


# settings a resumed run may change: the DAMC EMA rate scales with the run's length (an extended run)
RUN_LENGTH_SETTINGS = ("sampler.damc.ema_rho ",)


class LatentTrainer:
    """Trains ``model`` (generator + latent prior) on ``data`` (n, *x_shape) with ``sampler``.

    generator: the one torch.Generator for minibatches, chains and the sampler's own training.
    """

    def __init__(
        self,
        model: LatentModel,
        sampler: Sampler,
        data: Tensor,
        config: LoopConfig,
        generator: torch.Generator,
    ):
        model.check_x(data[:1])
        if not torch.isfinite(data).all():
            raise ValueError("data contains NaN or infinite values; clean them first")
        self.model, self.sampler, self.data, self.config, self.generator = model, sampler, data, config, generator
        g_params = [p for p in model.generator.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(g_params, lr=config.lr_g, betas=config.betas) if g_params else None
        prior_params = list(model.prior.parameters())
        self.opt_e = torch.optim.Adam(prior_params, lr=config.lr_e, betas=config.betas) if prior_params else None
        self.step_count = 0
        self.history: list[dict[str, Any]] = []

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        opts = [self.opt_g, self.opt_e, getattr(self.sampler, "optimizer", None)]
        return [o for o in opts if o is not None]

    def _batch(self) -> Tensor:
        n = self.data.shape[0]
        b = min(self.config.batch_size, n)
        idx = torch.randperm(n, generator=self.generator, device=self.generator.device)[:b]
        return self.data[idx.to(self.data.device)]

    def _check(self, what: str, t: Tensor) -> None:
        if not torch.isfinite(t).all():
            raise DivergenceError(self.step_count, what)

    def _optimizer_step(self, opt: torch.optim.Optimizer, loss: Tensor, what: str) -> None:
        self._check(what, loss.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.clip)
        self._check(f"{what} gradient", norm)
        opt.step()

    def step(self) -> dict[str, Any]:
        """One iteration; returns its history row (losses, energies, sampler loss)."""
        cfg, model, k = self.config, self.model, self.step_count
        x = self._batch()
        flags = [p.requires_grad for p in model.parameters()]
        model.requires_grad_(False)  # parameters frozen while sampling
        try:
            z_pos, z_neg = self.sampler.training_chains(model, x, self.generator)
        finally:
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)
        self._check("posterior samples", z_pos)
        self._check("prior samples", z_neg)
        row: dict[str, Any] = {"step": k, **self.sampler.learn(x, z_pos, self.generator)}

        loss_g = (x - model.generator(z_pos)).flatten(1).square().sum(1).mean()
        if self.opt_g is not None:
            self._optimizer_step(self.opt_g, loss_g, "generator loss")
        row["loss_g"] = float(loss_g.detach())
        if self.opt_e is not None:
            e_pos, e_neg = model.prior.energy(z_pos), model.prior.energy(z_neg)
            w = self.sampler.prior_weights()

            def prior_mean(t: Tensor) -> Tensor:
                return t.mean() if w is None else (w * t).sum()

            loss_e = e_pos.mean() - prior_mean(e_neg)
            if cfg.energy_reg:
                loss_e = loss_e + cfg.energy_reg * (e_pos.square().mean() + prior_mean(e_neg.square()))
            self._optimizer_step(self.opt_e, loss_e, "prior energy loss")
            row.update(
                loss_e=float(loss_e.detach()),
                e_pos=float(e_pos.detach().mean()),
                e_neg=float(prior_mean(e_neg.detach())),
            )
        self.step_count = k + 1
        if self.step_count % cfg.decay_every == 0:
            for opt in self._optimizers():
                for group in opt.param_groups:
                    group["lr"] = max(group["lr"] * cfg.decay, cfg.lr_floor)
        self.history.append(row)
        return row

    def run(
        self,
        n_iters: int,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 200,
        progress: bool | None = None,
        desc: str = "latent",
        callback: Callable[[LatentTrainer, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Iterate until ``step_count == n_iters``; checkpoint every ``checkpoint_every`` iterations and at the
        end.  On divergence a :class:`~ebmlab.training.DivergenceError` propagates and the last checkpoint stays."""
        return run_loop(
            self,
            n_iters,
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
            progress=progress,
            desc=desc,
            callback=callback,
            postfix=lambda row: {"loss_g": f"{row['loss_g']:.1f}"},
        )

    def state_dict(self) -> dict[str, Any]:
        """Model, optimisers, sampler (networks, EMA, optimiser), step, history and every RNG state."""
        return {
            "model": self.model.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g is not None else None,
            "opt_e": self.opt_e.state_dict() if self.opt_e is not None else None,
            "sampler": self.sampler.state_dict(),
            "step": self.step_count,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "config": asdict(self.config),
            "settings": self._settings(),
        }

    def _settings(self) -> dict[str, Any]:
        """What a checkpoint must have been written with to be resumed here: loop and sampler settings."""
        return {"loop": asdict(self.config), "sampler": sampler_settings(self.sampler)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; a ValueError names every setting it was written with that differs."""
        current = self._settings()
        saved = state.get("settings", {"loop": state["config"], "sampler": current["sampler"]})  # older checkpoints
        diff = [d for d in ckpt.settings_diff(saved, current) if not d.startswith(RUN_LENGTH_SETTINGS)]
        if diff:
            raise ValueError(
                "the latent checkpoint was written with other settings: " + "; ".join(diff) + ". Resume with the "
                "settings it was written with, or start afresh in another output directory"
            )
        self.model.load_state_dict(state["model"])
        if self.opt_g is not None:
            self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_e is not None:
            self.opt_e.load_state_dict(state["opt_e"])
        self.sampler.load_state_dict(state["sampler"])
        self.step_count = int(state["step"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])

    def save(self, path: str | os.PathLike) -> None:
        """Write an atomic checkpoint."""
        ckpt.save_atomic(self.state_dict(), path)

    def resume(self, path: str | os.PathLike) -> None:
        """Restore from a checkpoint written by :meth:`save`."""
        self.load_state_dict(ckpt.load(path))
