"""The walker half of a training iteration (a mixin of :class:`~ebmlab.training.Trainer` over its
attributes): which walkers move, where their noise comes from, the move itself, the divergence
checks and the resampling (one :func:`~ebmlab.sampling.populations.advance_populations` over the gradient's
walkers and the estimator population), with the weight summaries of both kept up to date.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..distributed import NoiseRows, stream_seed
from ..sampling import smc
from ..sampling.populations import PopulationMove, Populations, advance_populations
from ..sampling.walkers import Walkers
from .fields import TrainerFields


class WalkerMoves(TrainerFields):
    """Moves of the gradient's walkers and the estimator population (see the module docstring)."""

    def _choose(self, n_total: int, n_batch: int | None, n_local: int) -> tuple[Tensor | None, NoiseRows | None]:
        """The walkers that move this update (None = all) and their rows in the population's noise draw
        (None with per-rank noise: each process draws for its own walkers only)."""
        coll, g = self.collective, self.generator
        if n_batch is None or n_batch >= n_total:
            moved, rows = None, coll.population_rows(n_local)
        else:
            chosen = torch.randperm(n_total, generator=g, device=g.device)[:n_batch]
            moved, rows = coll.select(chosen.to(self.data.device), n_local)
        return moved, rows if self.noise == "replicated" else None

    def _noise_generator(self) -> torch.Generator:
        """Where this iteration's walker noise comes from: the shared generator, or this process's stream."""
        if self.noise == "replicated":
            return self.generator
        seed = stream_seed(self.noise_seed, self.step_count, self.collective.rank)
        return torch.Generator(self.generator.device).manual_seed(seed)

    def refresh_summaries(self) -> None:
        """Recompute the weight summaries of the walkers and the estimator population (one collective)."""
        self.summaries = Populations(self.walkers, self.estimator).summaries(self.collective)

    def _reset(self, walkers: Walkers) -> Walkers:
        """CD: the walkers back at fresh data every ``reset_every`` iterations."""
        if self.phase.reset_every is None or (self.step_count + 1) % self.phase.reset_every:
            return walkers
        return smc.start(self.energy, self.collective.split(self._data_sample(self.n_walkers)), walkers.log_z_ref)

    def _move_walkers(self, moved: Tensor | None, rows: NoiseRows | None) -> dict[str, Any]:
        """Move the gradient's walkers and the estimator population to theta_{k+1}, reset them (CD),
        check for divergence, and resample on low ESS (:func:`~ebmlab.sampling.populations.advance_populations`)."""
        phase = self.phase
        how = PopulationMove(
            phase.move,
            phase.weighted,
            phase.resampling,
            phase.estimator_resampling,
            self.divergence_bound,
            self.precondition,
            self.split_increments,
        )
        pops, info = advance_populations(
            Populations(self.walkers, self.estimator),
            self.energy,
            how,
            self.generator,
            iteration=self.step_count,
            noise=self._noise_generator(),
            subset=moved,
            rows=rows,
            choose_estimator=lambda n_local: self._choose(self.log_z_walkers, self._estimator_batch(), n_local),
            after_walkers=self._reset,
            coll=self.collective,
        )
        self.walkers, self.estimator, self.summaries = pops.walkers, pops.estimator, info.summaries
        out: dict[str, Any] = {} if info.accept_rate is None else {"accept_rate": info.accept_rate}
        out["resampled"] = info.resampled
        if info.estimator_resampled is not None:
            out["est_resampled"] = info.estimator_resampled
        return out | info.increments

    def _estimator_batch(self) -> int | None:
        """Estimator walkers moved per update: the same fraction as the gradient's (None = all)."""
        n_b = self.phase.walker_batch
        return None if n_b is None else max(2, math.ceil(self.log_z_walkers * n_b / self.n_walkers))
