"""One training loop for CD, PCD and Jarzynski-weighted EBM training.

Each iteration follows Carbone et al.'s Algorithm 1:
(1) w = softmax(A); (2) gradient g = mean_data dU/dtheta - sum_i w_i dU/dtheta(X_i) and an optimiser
step theta_k -> theta_{k+1}; (3)-(4) ULA move with theta_k and log-weight update; (5) CD reset;
(6) resampling when ESS/N falls below the threshold.  Row k of the history describes theta_k and
the walkers at the start of iteration k: estimated (and, for closed-form models, exact) log Z and
cross-entropy CE = E_data[U] + log Z, ESS/N, and whether the iteration resampled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..distributed import LOCAL, Collective
from ..sampling.langevin import LangevinState
from ..sampling.walkers import Walkers, ess_fraction, log_z_estimate, maybe_resample, normalized_weights
from . import checkpoint as ckpt
from .loop import run_loop
from .negative_phase import NegativePhase, move_walkers, walkers_at

Sampler = Callable[[int, torch.Generator], Tensor]


class DivergenceError(RuntimeError):
    """Non-finite energies, gradients, parameters or log-weights; names the iteration."""

    def __init__(self, step: int, what: str):
        super().__init__(
            f"training diverged at iteration {step}: {what} became NaN or infinite; "
            "the last good checkpoint (if any) was kept. Try a smaller learning rate or step size."
        )
        self.step = step
        self.what = what


def validate_data(energy: nn.Module, data: Tensor) -> None:
    """Raise ValueError if ``data`` (n, *event) is not finite floating data the energy accepts."""
    if not isinstance(data, Tensor) or not data.is_floating_point():
        raise ValueError("data must be a floating-point torch.Tensor of shape (n, *event)")
    if data.dim() < 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (n, *event) with n >= 1, got {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        bad = int((~torch.isfinite(data)).flatten(1).any(1).sum())
        raise ValueError(f"data contains NaN or infinite values in {bad} sample(s); clean them first")
    dim = getattr(energy, "dim", None)
    if isinstance(dim, int) and data.dim() == 2 and data.shape[1] != dim:
        raise ValueError(f"data has dimension {data.shape[1]} but the energy expects {dim}")
    try:
        with torch.no_grad():
            u = energy(data[:2])
    except RuntimeError as exc:
        raise ValueError(f"the energy cannot be evaluated on data of shape {tuple(data.shape)}: {exc}") from exc
    if u.shape != (min(2, data.shape[0]),):
        raise ValueError(f"the energy must return one value per sample; got shape {tuple(u.shape)}")


def _exact_log_z(energy: nn.Module) -> float | None:
    log_z = getattr(energy, "log_z", None)
    if not callable(log_z):
        return None
    with torch.no_grad():
        return float(log_z())


class Trainer:
    """Maximum-likelihood (cross-entropy) training of an energy with a walker negative phase.

    energy: nn.Module mapping (N, *event) -> (N,) energies in nats.
    data: (n, *event) training data.  optimizer: any torch.optim optimiser over the energy's parameters.
    phase: :class:`NegativePhase` (see :func:`negative_phase` for the CD/PCD/Jarzynski presets).
    n_walkers: population size N.  generator: the one source of randomness (walker noise, data
    batches, resampling).  init_sampler(n, generator): exact draws from the initial model (default
    ``energy.sample``) for init="model".  log_z0: log Z of the initial model (default ``energy.log_z()``
    if defined, else 0, making log-Z estimates relative).  data_batch: data mini-batch size (None =
    full batch).  energy_reg: alpha in alpha*(E_data[U^2] + E_w[U^2]).  grad_clip: max gradient norm.
    scheduler: optional lr scheduler stepped every iteration.
    collective: how the walkers are split across processes (default :data:`~ebmlab.distributed.LOCAL`,
    one process).  With a distributed one, every process builds the trainer with the same energy,
    data, optimiser and generator seed and holds N/P walkers; parameters stay in sync through an
    all-reduce of the gradient, each process evaluates its part of the data batch, and all draws
    come from the shared generator, so P processes follow the single-process run (see
    docs/distributed.md).  Only the main process writes checkpoints and shows a progress bar.
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
        data_batch: int | None = None,
        energy_reg: float = 0.0,
        grad_clip: float | None = None,
        scheduler: Any = None,
        collective: Collective = LOCAL,
    ):
        validate_data(energy, data)
        if n_walkers < 2:
            raise ValueError(f"need at least 2 walkers, got n_walkers={n_walkers}")
        p = collective.world_size
        if n_walkers % p:
            raise ValueError(f"n_walkers={n_walkers} must be a multiple of the number of processes ({p})")
        if (data_batch or data.shape[0]) < p:
            raise ValueError(
                f"the data batch ({data_batch or data.shape[0]}) must hold at least one point per process ({p})"
            )
        if phase.walker_batch is not None and phase.walker_batch > n_walkers:
            raise ValueError(f"walker_batch={phase.walker_batch} exceeds n_walkers={n_walkers}")
        if data_batch is not None and not 1 <= data_batch <= data.shape[0]:
            raise ValueError(f"data_batch must be in [1, {data.shape[0]}], got {data_batch}")
        self.energy, self.data, self.optimizer, self.phase = energy, data, optimizer, phase
        self.scheduler, self.generator, self.collective = scheduler, generator, collective
        self.n_walkers, self.data_batch = n_walkers, data_batch
        self.energy_reg, self.grad_clip = energy_reg, grad_clip
        self.has_exact_log_z = _exact_log_z(energy) is not None
        self.log_z0 = float(log_z0) if log_z0 is not None else (_exact_log_z(energy) or 0.0)
        self.step_count = 0
        self.history: list[dict[str, Any]] = []
        if phase.init == "model":
            sampler = init_sampler or getattr(energy, "sample", None)
            if sampler is None:
                raise ValueError(
                    "init='model' needs exact draws from the initial model: pass init_sampler(n, generator) "
                    "(e.g. MLPEnergy.sample_initial) or use an energy with a sample() method"
                )
            x0 = sampler(n_walkers, generator).to(dtype=data.dtype, device=data.device)
        else:
            x0 = self._data_sample(n_walkers)
        self.walkers: Walkers = walkers_at(energy, collective.split(x0), self.log_z0)
        collective.check_replicated(self._fingerprint(), "the parameters, data or generator state")

    # -- pieces -----------------------------------------------------------------------------------
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

    def _fingerprint(self) -> Tensor:
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

    def _check_finite(self, tensors: dict[str, Tensor], replicated: bool = False) -> None:
        """Raise DivergenceError, on every process alike, if any process holds a non-finite value
        (``replicated``: the tensors are the same on every process, no reduction needed)."""
        # a sum is finite iff every term is (barring overflow, itself a blow-up)
        sums = torch.stack([t.sum().double().cpu() for t in tensors.values()])
        for what, total in zip(tensors, sums if replicated else self.collective.sum(sums)):
            if not torch.isfinite(total):
                raise DivergenceError(self.step_count, what)

    # -- one iteration ----------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """Run one iteration and return its history row."""
        phase, walkers, k, coll = self.phase, self.walkers, self.step_count, self.collective
        n_b = phase.walker_batch
        moved, rows = None, coll.population_rows(walkers.n)
        if n_b is not None and n_b < self.n_walkers:
            chosen = torch.randperm(self.n_walkers, generator=self.generator, device=self.generator.device)[:n_b]
            moved, rows = coll.select(chosen.to(walkers.x.device), walkers.n)
        log_w = walkers.log_w if moved is None else walkers.log_w[moved]
        x_walk = walkers.x if moved is None else walkers.x[moved]
        w = (
            normalized_weights(log_w, coll)
            if phase.weighted
            else torch.full_like(log_w, 1.0 / (self.n_walkers if moved is None else n_b))
        )
        n_data = self.data.shape[0] if self.data_batch is None else self.data_batch
        x_data = coll.split(self.data if self.data_batch is None else self._data_sample(self.data_batch))

        row: dict[str, Any] = {"step": k, "ess_frac": float(ess_fraction(walkers.log_w, coll))}
        if phase.weighted:
            row["log_z_est"] = float(log_z_estimate(walkers, coll))
        if self.has_exact_log_z:
            row["log_z_exact"] = _exact_log_z(self.energy)

        self.optimizer.zero_grad(set_to_none=True)
        loss, u_data = self._loss(x_data, x_walk, w, n_data)
        totals = coll.sum(torch.stack([loss.detach().double(), u_data.double().sum()]))  # global loss, sum of U
        self._check_finite({"loss": totals[0]}, replicated=True)
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        coll.sum_([p.grad for p in params])
        self._check_finite(
            {"parameter gradient": torch.stack([p.grad.detach().double().norm() for p in params])}, replicated=True
        )
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        row["loss"] = float(totals[0])
        mean_u = float(totals[1]) / n_data
        if "log_z_est" in row:
            row["ce_est"] = mean_u + row["log_z_est"]
        if "log_z_exact" in row:
            row["ce_exact"] = mean_u + row["log_z_exact"]

        walkers = move_walkers(walkers, self.energy, phase, self.generator, moved, rows)
        if phase.reset_every is not None and (k + 1) % phase.reset_every == 0:
            walkers = walkers_at(self.energy, coll.split(self._data_sample(self.n_walkers)), walkers.log_z_ref)
        resampled = False
        if phase.weighted and phase.ess_threshold is not None:
            walkers, resampled = maybe_resample(
                walkers, phase.ess_threshold, phase.resampler, self.generator, coll, phase.resample_scope
            )
        row["resampled"] = resampled
        self._check_finite(
            {
                "walker energies": walkers.state.energy,
                "walker gradients": walkers.state.grad,
                "log-weights": walkers.log_w,
            }
        )
        self.walkers = walkers
        self.step_count = k + 1
        self.history.append(row)
        return row

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
        """Iterate until ``step_count == n_iters`` (so a resumed run continues to the same total).

        Checkpoints go to ``checkpoint_path`` every ``checkpoint_every`` iterations and at the end;
        on divergence a :class:`DivergenceError` propagates and the last good checkpoint stays.
        ``progress``: show a tqdm bar (None = only when stderr is a terminal; never off the main process).
        ``callback(trainer, row)`` runs after each iteration (e.g. to record extra metrics into row).
        """
        return run_loop(
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

    # -- state ------------------------------------------------------------------------------------
    def population(self) -> Walkers:
        """The walkers of all processes, gathered on every process (a collective call)."""
        w, gather = self.walkers, self.collective.gather
        return Walkers(
            LangevinState(gather(w.state.x), gather(w.state.energy), gather(w.state.grad)), gather(w.log_w), w.log_z_ref
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume to the identical result; the walkers of all processes gathered
        (a collective call: every process must make it)."""
        w = self.population()
        return {
            "energy": self.energy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "walkers": {
                "x": w.state.x,
                "energy": w.state.energy,
                "grad": w.state.grad,
                "log_w": w.log_w,
                "log_z_ref": w.log_z_ref,
            },
            "step": self.step_count,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "log_z0": self.log_z0,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; each process takes its shard of the walkers (any number of
        processes dividing N)."""
        self.energy.load_state_dict(state["energy"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        dev = self.data.device
        w = {k: v.to(dev) for k, v in state["walkers"].items()}
        if w["x"].shape[0] != self.n_walkers:
            raise ValueError(f"checkpoint holds {w['x'].shape[0]} walkers, this trainer {self.n_walkers}")
        split = self.collective.split
        self.walkers = Walkers(
            LangevinState(split(w["x"]), split(w["energy"]), split(w["grad"])), split(w["log_w"]), w["log_z_ref"]
        )
        self.step_count = int(state["step"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.history = list(state["history"])
        self.log_z0 = float(state["log_z0"])

    def save(self, path: str | os.PathLike) -> None:
        """Write an atomic checkpoint (the main process writes; every process must call this)."""
        state = self.state_dict()
        if self.collective.is_main:
            ckpt.save_atomic(state, path)
        self.collective.barrier()

    def resume(self, path: str | os.PathLike) -> None:
        """Restore from a checkpoint written by :meth:`save`."""
        self.load_state_dict(ckpt.load(path))

    def summary(self) -> dict[str, float]:
        """Current (theta_K, walkers at K) values: estimated/exact log Z, ESS/N."""
        coll = self.collective
        out = {"step": self.step_count, "ess_frac": float(ess_fraction(self.walkers.log_w, coll))}
        if self.phase.weighted:
            out["log_z_est"] = float(log_z_estimate(self.walkers, coll))
        if self.has_exact_log_z:
            out["log_z_exact"] = _exact_log_z(self.energy)
        return out
