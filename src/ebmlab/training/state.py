"""Checkpoints of the trainer: what it saves, what a checkpoint must agree with, and resuming."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import torch

from ..io import fingerprint
from ..sampling.walkers import Walkers, gather_walkers, walkers_from_dict, walkers_to_dict
from . import checkpoint as ckpt
from .fields import TrainerFields

CHECKPOINT_FORMAT = 2


class Checkpointable(TrainerFields):
    """State handling of :class:`~ebmlab.training.Trainer` (a mixin over its attributes)."""

    def population(self) -> Walkers:
        """The gradient's walkers of all processes, gathered on every process (a collective call)."""
        return gather_walkers(self.walkers, self.collective)

    def settings(self) -> dict[str, Any]:
        """What a checkpoint must agree with to be resumed here (checked by :meth:`load_state_dict`)."""
        phase = asdict(self.phase)
        del phase["move"]["compile"]  # rounding only
        return {
            "phase": phase,
            "n_walkers": self.n_walkers,
            "log_z_walkers": self.log_z_walkers,
            "data_batch": self.data_batch,
            "energy_reg": self.energy_reg,
            "grad_clip": self.grad_clip,
            "energy": type(self.energy).__name__,
            "optimizer": type(self.optimizer).__name__,
            "data": fingerprint(self.data),
            **({"noise": self.noise} if self.noise != "replicated" else {}),  # older checkpoints: replicated
            **({"lr_ess_target": self.lr_ess_target} if self.lr_ess_target is not None else {}),
            **({"precondition": fingerprint(self.precondition.chol)} if self.precondition is not None else {}),
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume to the identical result; the walkers of all processes gathered
        (a collective call: every process must make it)."""
        est = self.estimator
        return {
            "format": CHECKPOINT_FORMAT,
            "settings": self.settings(),
            "energy": self.energy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "walkers": walkers_to_dict(self.population()),
            "estimator": None if est is None else walkers_to_dict(gather_walkers(est, self.collective)),
            "step": self.step_count,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "log_z0": self.log_z0,
            "wall_time_s": self.wall_time_s,
            "noise_seed": self.noise_seed,
            "lr_scale": self.lr_scale,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; each process takes its shard of the walkers (any number of
        processes dividing N and M).  A checkpoint of another format or with other settings (phase,
        population sizes, energy or optimiser class, data) is refused with a ValueError naming them."""
        ckpt.check_settings(ckpt.nested_move(state), CHECKPOINT_FORMAT, self.settings())
        self.energy.load_state_dict(state["energy"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        dev = self.data.device
        self.walkers = walkers_from_dict(state["walkers"], self.collective, dev)
        est = state["estimator"]
        self.estimator = None if est is None else walkers_from_dict(est, self.collective, dev)
        self.step_count = int(state["step"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])
        self.log_z0 = float(state["log_z0"])
        self.wall_time_s = float(state["wall_time_s"])
        self.noise_seed = int(state.get("noise_seed", self.noise_seed))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.refresh_summaries()

    def save(self, path: str | os.PathLike) -> None:
        """Write an atomic checkpoint (the main process writes; every process must call this)."""
        state = self.state_dict()
        if self.collective.is_main:
            ckpt.save_atomic(state, path)
        self.collective.barrier()

    def resume(self, path: str | os.PathLike) -> None:
        """Restore from a checkpoint written by :meth:`save`."""
        self.load_state_dict(ckpt.load(path))
