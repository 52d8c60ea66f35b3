"""One training loop for CD, PCD and Jarzynski-weighted EBM training.

Each iteration follows Carbone et al.'s Algorithm 1: (1) w = softmax(A); (2) g = mean_data dU/dtheta -
sum_i w_i dU/dtheta(X_i) and an optimiser step (optionally ESS-controlled, :mod:`ebmlab.training.control`);
(3)-(6) walker move and log-weight update, CD reset, resampling (:mod:`ebmlab.sampling.populations`).

The gradient's own walkers give a log Z estimate biased low by feedback: the update raises the energy
where they sit, so their next increments U_k - U_{k+1} are biased (docs/method.md, section 3).  An
*estimator population* of ``log_z_walkers`` walkers, drawn from the initial model and moved with the
same kernel along the same parameter path but never used in the gradient, is unbiased given the path;
when it exists the reported ``log_z_est`` / ``log_z_se`` / ``ce_est`` come from it and the gradient
walkers' estimate is kept as the diagnostic ``log_z_est_coupled``.

Row k of the history describes theta_k and the walkers at the start of iteration k: estimated (and, for
closed-form models, exact) log Z with its standard error and the cross-entropy CE = E_data[U] + log Z,
ESS/N, and what the iteration did (resampled, acceptance rate, committed update fraction).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..distributed import LOCAL, NOISE_MODES, Collective
from ..sampling import smc
from ..sampling.populations import Populations, estimates
from ..sampling.preconditioner import Preconditioner
from ..sampling.walkers import Walkers, normalized_weights
from ..uncertainty import reliability, warn_unreliable
from .control import adapt_update, commit_update, snapshot
from .loop import run_loop
from .moves import WalkerMoves
from .negative_phase import NegativePhase, default_log_z_walkers
from .state import Checkpointable
from .validation import (
    DIVERGENCE_BOUND,
    check_int,
    check_log_z0,
    check_options,
    check_values,
    exact_log_z,
    initial_log_z,
    initial_sampler,
    validate_data,
)

Sampler = Callable[[int, torch.Generator], Tensor]


class Trainer(WalkerMoves, Checkpointable):
    """Maximum-likelihood (cross-entropy) training of an energy with a walker negative phase.

    energy: nn.Module mapping (N, *event) -> (N,) energies in nats.
    data: (n, *event) training data.  optimizer: any torch.optim optimiser over the energy's parameters.
    phase: :class:`NegativePhase` (see :func:`negative_phase` for the CD/PCD/Jarzynski presets).
    n_walkers: population size N.  generator: the one source of randomness (walker noise, data
    batches, resampling).  init_sampler(n, generator): exact draws from the initial model (default
    ``energy.sample_initial`` or ``energy.sample``) for init="model" and the estimator population.
    log_z0: log Z of the initial model (default ``energy.initial_log_z()`` or ``energy.log_z()``, else 0,
    making log-Z estimates relative).
    log_z_walkers: size M of the estimator population (0 = off; None = N/4 for weighted training, off
    for PCD/CD; any method can have one if the initial model can be sampled).  It moves the same
    fraction of its walkers per update as the gradient's, with the phase's kernel, and resamples
    multinomially (the genealogy standard error needs it) at the phase's ESS threshold (0.5 for PCD/CD).
    data_batch: data mini-batch size (None = full batch).  energy_reg: alpha in
    alpha*(E_data[U^2] + E_w[U^2]).  grad_clip: max gradient norm.  scheduler: optional lr scheduler
    stepped every iteration.  divergence_bound: |loss|, |walker energy| or |parameter| beyond it stops
    training with a :class:`DivergenceError` (finite blow-ups), as does any NaN or infinity.
    collective: how the walkers are split across processes (default :data:`~ebmlab.distributed.LOCAL`); every
    process builds the trainer alike and holds N/P (and M/P) walkers, and P processes follow the
    single-process run (docs/distributed.md).  noise: "replicated" (every process draws the whole
    population's noise: P processes reproduce one) or "per-rank" (each draws its own walkers' noise from a
    counter-based stream: reproducible for a given P).
    lr_ess_target: ESS-adaptive learning rate (weighted training; :func:`~.control.adapt_update`): a running
    factor in (0, 1] scales every optimiser step, halving until the update's conditional ESS/N reaches the
    target and growing back after it (history ``update_fraction``, ``cess``; None = off).
    precondition: both populations move in the fixed coordinates of this
    :class:`~ebmlab.sampling.preconditioner.Preconditioner` (a whitened kernel; flat walkers); weights stay exact.
    split_increments: record per update the weighted variance of the log-weight increment and of its parameter
    and kernel parts (:mod:`ebmlab.sampling.diagnostics`; history ``inc_var*``, ``est_inc_var*``).
    """

    def __init__(
        self,
        energy: nn.Module,
        data: Tensor,
        optimizer: torch.optim.Optimizer,
        phase: NegativePhase,
        *,
        n_walkers: int,
        generator: torch.Generator,
        init_sampler: Sampler | None = None,
        log_z0: float | None = None,
        log_z_walkers: int | None = None,
        data_batch: int | None = None,
        energy_reg: float = 0.0,
        grad_clip: float | None = None,
        scheduler: Any = None,
        divergence_bound: float = DIVERGENCE_BOUND,
        collective: Collective = LOCAL,
        noise: str = "replicated",
        lr_ess_target: float | None = None,
        precondition: Preconditioner | None = None,
        split_increments: bool = False,
    ):
        validate_data(energy, data)
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        if not isinstance(phase, NegativePhase):
            raise TypeError(f"phase must be a NegativePhase (see negative_phase()), got {type(phase).__name__}")
        p = collective.world_size
        n_walkers = check_int("n_walkers", n_walkers, 2)
        m = default_log_z_walkers(n_walkers, phase, p) if log_z_walkers is None else log_z_walkers
        m = check_int("log_z_walkers", m, 0)
        for name, n in (("n_walkers", n_walkers), ("log_z_walkers", m)):
            if n % p:
                raise ValueError(f"{name}={n} must be a multiple of the number of processes ({p})")
        if m == 1:
            raise ValueError("log_z_walkers must be 0 (off) or at least 2")
        if data_batch is not None and not (check_int("data_batch", data_batch, 1) <= data.shape[0]):
            raise ValueError(f"data_batch must be in [1, {data.shape[0]}], got {data_batch}")
        if (data_batch or data.shape[0]) < p:
            raise ValueError(f"the data batch ({data_batch or data.shape[0]}) must hold at least one point per process")
        if phase.walker_batch is not None and phase.walker_batch > n_walkers:
            raise ValueError(f"walker_batch={phase.walker_batch} exceeds n_walkers={n_walkers}")
        check_options(phase, divergence_bound, energy_reg, lr_ess_target, precondition)
        self.lr_ess_target, self.lr_scale = lr_ess_target, 1.0
        self.precondition, self.split_increments = precondition, bool(split_increments)
        self.energy, self.data, self.optimizer, self.phase = energy, data, optimizer, phase
        self.scheduler, self.generator, self.collective = scheduler, generator, collective
        self.n_walkers, self.log_z_walkers, self.data_batch = n_walkers, m, data_batch
        self.energy_reg, self.grad_clip, self.divergence_bound = energy_reg, grad_clip, divergence_bound
        self.noise, self.noise_seed = noise, generator.initial_seed()
        self.has_exact_log_z = exact_log_z(energy) is not None
        needs_initial_model = phase.init == "model" or m > 0
        if log_z0 is None:
            log_z0 = initial_log_z(energy) if needs_initial_model else (exact_log_z(energy) or 0.0)
        self.log_z0 = check_log_z0(log_z0)
        self.step_count = 0
        self.wall_time_s = 0.0  # seconds spent in step(), carried across resumes
        self.history: list[dict[str, Any]] = []
        sampler = init_sampler or initial_sampler(energy)
        if sampler is None and needs_initial_model:
            raise ValueError(
                "init='model' and the estimator population (log_z_walkers > 0) need exact draws from the initial "
                "model: pass init_sampler(n, generator) (e.g. MLPEnergy.sample_initial) or use an energy with a "
                "sample() method (or set log_z_walkers=0 for PCD/CD)"
            )
        x0 = self._initial_draws(sampler, n_walkers) if phase.init == "model" else self._data_sample(n_walkers)
        self.walkers: Walkers = smc.start(energy, collective.split(x0), self.log_z0)
        self.estimator: Walkers | None = None
        if m:
            self.estimator = smc.start(energy, collective.split(self._initial_draws(sampler, m)), self.log_z0)
        self.refresh_summaries()
        collective.check_replicated(self._replicated_summary(), "the parameters, data or generator state")

    # -- pieces -----------------------------------------------------------------------------------
    def _initial_draws(self, sampler: Sampler, n: int) -> Tensor:
        x = sampler(n, self.generator)
        want = (n, *self.data.shape[1:])
        if not isinstance(x, Tensor) or tuple(x.shape) != want:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"init_sampler({n}, generator) must return a tensor of shape {want}, got {got}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("init_sampler returned NaN or infinite values: check the initial model's sampler")
        return x.to(dtype=self.data.dtype, device=self.data.device)

    def _data_sample(self, n: int) -> Tensor:
        """n data points: without replacement if n <= len(data), else with replacement."""
        m = self.data.shape[0]
        g = self.generator
        idx = (
            torch.randperm(m, generator=g, device=g.device)[:n]
            if n <= m
            else torch.randint(m, (n,), generator=g, device=g.device)
        )
        return self.data[idx.to(self.data.device)]

    def _replicated_summary(self) -> Tensor:
        """Float64 summary of what every process must share: parameters, data, generator state."""
        parts = [t.detach().double().sum() for t in self.energy.state_dict().values() if t.is_floating_point()]
        gen = self.generator.get_state().double()
        parts += [self.data.double().sum(), (gen * torch.arange(gen.numel(), dtype=torch.float64)).sum()]
        return torch.stack([t.cpu() for t in parts])

    def _loss(self, x_data: Tensor, x_walk: Tensor, w: Tensor, n_data: int) -> tuple[Tensor, Tensor]:
        """This process's part of the loss: its ``x_data`` rows of a batch of ``n_data`` points and its
        walkers with globally normalised weights ``w``; the parts sum to the full loss."""
        u_data = self.energy(x_data)
        u_walk = self.energy(x_walk)
        w = w.to(u_walk.dtype)
        loss = u_data.sum() / n_data - (w * u_walk).sum()
        if self.energy_reg:
            loss = loss + self.energy_reg * (u_data.square().sum() / n_data + (w * u_walk.square()).sum())
        return loss, u_data.detach()

    def _check(self, bounded: dict[str, Tensor], finite: dict[str, Tensor], replicated: bool = False) -> None:
        check_values(self.step_count, bounded, finite, self.divergence_bound, self.collective, replicated)

    def _estimates(self) -> dict[str, float]:
        """ESS/N of the gradient's walkers, log Z estimates with standard errors, exact log Z if known
        (from the weight summaries kept with the walkers: no communication)."""
        out = estimates(Populations(self.walkers, self.estimator), self.summaries, self.phase.weighted)
        if self.has_exact_log_z and (exact := exact_log_z(self.energy)) is not None:
            out["log_z_exact"] = exact
        return out | reliability(out, reasons=False)

    # -- one iteration ----------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """Run one iteration and return its history row."""
        start = time.perf_counter()
        moved, rows = self._choose(self.n_walkers, self.phase.walker_batch, self.walkers.n)
        row: dict[str, Any] = {"step": self.step_count, **self._estimates()}
        row |= self._update_parameters(moved, row)
        row |= self._move_walkers(moved, rows)
        self.step_count += 1
        self.history.append(row)
        self.wall_time_s += time.perf_counter() - start
        return row

    def _update_parameters(self, moved: Tensor | None, row: dict[str, Any]) -> dict[str, Any]:
        """theta_k -> theta_{k+1} from the data and the (weighted) walkers; the loss, cross-entropies and,
        under ESS control, the committed fraction of the update."""
        phase, walkers, coll = self.phase, self.walkers, self.collective
        log_w = walkers.log_w if moved is None else walkers.log_w[moved]
        x_walk = walkers.x if moved is None else walkers.x[moved]
        n_used = self.n_walkers if moved is None or phase.walker_batch is None else phase.walker_batch
        log_norm = self.summaries[0].log_norm if moved is None else None  # the subset's is not at hand
        w = normalized_weights(log_w, coll, log_norm) if phase.weighted else torch.full_like(log_w, 1.0 / n_used)
        n_data = self.data.shape[0] if self.data_batch is None else self.data_batch
        x_data = coll.split(self.data if self.data_batch is None else self._data_sample(self.data_batch))
        self.optimizer.zero_grad(set_to_none=True)
        loss, u_data = self._loss(x_data, x_walk, w, n_data)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        totals = torch.stack([loss.detach().double(), u_data.double().sum()])  # global loss, sum of U
        coll.sum_([*(p.grad for p in params), totals])  # one all-reduce per dtype
        self._check({"the loss": totals[:1]}, {}, replicated=True)
        self._check({}, {"the parameter gradient": torch.stack([p.grad.norm() for p in params])}, replicated=True)
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        controlled = phase.cess_target is not None or self.lr_ess_target is not None
        before = snapshot(params) if controlled else None
        self.optimizer.step()
        out: dict[str, Any] = {"loss": float(totals[0])}
        if before is not None and phase.cess_target is not None:
            out["update_fraction"], out["cess"] = commit_update(
                self.energy, params, before, walkers, phase.cess_target, coll
            )
        elif before is not None and self.lr_ess_target is not None:
            out["update_fraction"], out["cess"], self.lr_scale = adapt_update(
                self.energy, params, before, walkers, self.lr_ess_target, self.lr_scale, coll
            )
        if self.scheduler is not None:
            self.scheduler.step()
        self._check({"a parameter": torch.stack([p.detach().abs().max() for p in params])}, {}, replicated=True)
        mean_u = float(totals[1]) / n_data
        for kind in ("est", "exact"):
            if f"log_z_{kind}" in row:
                out[f"ce_{kind}"] = mean_u + row[f"log_z_{kind}"]
        return out

    def run(
        self,
        n_iters: int,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 500,
        progress: bool | None = None,
        desc: str = "train",
        callback: Callable[[Trainer, dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Iterate until ``step_count == n_iters`` (a resumed run continues to the same total); checkpoints
        every ``checkpoint_every`` iterations and at the end (on divergence a :class:`DivergenceError`
        propagates and the last good checkpoint stays); ``progress``: tqdm bar (None = only on a terminal);
        ``callback(trainer, row)`` runs after each iteration (e.g. to record extra metrics into row)."""
        history = run_loop(
            self,
            n_iters,
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
            progress=progress if self.collective.is_main else False,
            desc=desc,
            callback=callback,
            postfix=lambda row: {"ess": f"{row['ess_frac']:.2f}"},
            postfix_every=50,
        )
        warn_unreliable(self.summary())  # a collapsed log Z estimate is not a value: say so, and what to change
        return history

    def summary(self) -> dict[str, float]:
        """Current (theta_K, walkers at K) values: log Z estimates with SEs (estimator population, ``*_coupled`` the
        gradient's walkers), exact log Z if known, ESS/N, ``log_z_reliable*`` (with reasons: ``reliability``)."""
        row = {"step": self.step_count, **self._estimates()}
        return row | reliability(row)
