"""The walker half of a training iteration (a mixin of :class:`~ebmlab.training.Trainer` over its
attributes): which walkers move, where their noise comes from, the move itself, the divergence
checks and the resampling, with the weight summaries of both populations kept up to date.

Communication: the checks, both populations' weight summaries (:mod:`ebmlab.sampling.summary`) and
the acceptance counts travel in one all_gather per iteration; a resampling adds its own exchange
and one more gather for the new summaries.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..distributed import NoiseRows, stream_seed
from ..sampling import smc
from ..sampling.summary import summarize
from ..sampling.walkers import maybe_resample, population
from .fields import TrainerFields
from .validation import check_worst, worst_values


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
        pops = [population(self.walkers), None if self.estimator is None else population(self.estimator)]
        self.summaries, _, _ = summarize(pops, self.collective)

    def _move_walkers(self, moved: Tensor | None, rows: NoiseRows | None) -> dict[str, Any]:
        """Move the gradient's walkers (and the estimator population) to theta_{k+1}, reset them (CD),
        check for divergence, and resample on low ESS; one collective for the checks, the weight
        summaries and the acceptance counts."""
        phase, coll, gen = self.phase, self.collective, self.generator
        noise = self._noise_generator()
        walkers, info = smc.advance(
            self.walkers, self.energy, phase.move, noise, subset=moved, rows=rows, weighted=phase.weighted
        )
        if phase.reset_every is not None and (self.step_count + 1) % phase.reset_every == 0:
            walkers = smc.start(self.energy, coll.split(self._data_sample(self.n_walkers)), walkers.log_z_ref)
        checks = {"walker energies": walkers.state.energy}
        finite = {"walker gradients": walkers.state.grad, "log-weights": walkers.log_w}
        estimator = self.estimator
        if estimator is not None:
            est_moved, est_rows = self._choose(self.log_z_walkers, self._estimator_batch(), estimator.n)
            estimator, _ = smc.advance(estimator, self.energy, phase.move, noise, subset=est_moved, rows=est_rows)
            checks["estimator energies"] = estimator.state.energy
            finite["estimator log-weights"] = estimator.log_w
        pops = [population(walkers), None if estimator is None else population(estimator)]
        (s_walk, s_est), worst, counts = summarize(pops, coll, worst_values(checks | finite), info.counts)
        assert worst is not None  # the values to check were given
        check_worst(self.step_count, list(checks), list(finite), worst, self.divergence_bound)
        out: dict[str, Any] = {} if counts is None else {"accept_rate": float(counts[0] / counts[1])}
        out["resampled"] = False
        if phase.weighted and phase.ess_threshold is not None:
            walkers, out["resampled"] = maybe_resample(
                walkers, phase.ess_threshold, phase.resampler, gen, coll, phase.resample_scope, s_walk
            )
        if estimator is not None:
            threshold = 0.5 if phase.ess_threshold is None else phase.ess_threshold
            estimator, out["est_resampled"] = maybe_resample(
                estimator, threshold, "multinomial", gen, coll, phase.resample_scope, s_est
            )
        self.walkers, self.estimator, self.summaries = walkers, estimator, [s_walk, s_est]
        if out["resampled"] or out.get("est_resampled"):
            self.refresh_summaries()
        return out

    def _estimator_batch(self) -> int | None:
        """Estimator walkers moved per update: the same fraction as the gradient's (None = all)."""
        n_b = self.phase.walker_batch
        return None if n_b is None else max(2, math.ceil(self.log_z_walkers * n_b / self.n_walkers))
