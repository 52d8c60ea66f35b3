"""Maximum marginal likelihood for latent-variable models with weighted posterior walkers (JALA-EM).

Cuin, Carbone & Akyildiz (NeurIPS 2025) carry the weighted Langevin walkers of Carbone et al. (2023) over to a
latent-variable model with joint potential U_theta(x) = -log p_theta(x, y): walkers target the posterior
p_theta(x | y), whose normaliser is the evidence p_theta(y).  Each iteration (Algorithm 1 of Carbone et al.):

1. normalised weights w_i from the log-weights A_i, per fit;
2. the weighted Fisher identity: grad log p_theta(y) ~ -sum_i w_i dU_theta/dtheta(X_i); any ``torch.optim``
   optimiser minimises sum_i w_i U_theta(X_i) (w and X held fixed), theta_k -> theta_{k+1};
3. one Langevin move of every walker with theta_k, reweighted to theta_{k+1} (the engine's
   :func:`~ebmlab.sampling.smc.advance`: U_k(x) - U_{k+1}(y) + log q_{k+1}(y -> x) - log q_k(x -> y));
4. resampling of a fit whose ESS/N falls below the threshold.

The evidence log p_theta(y) is the running log Z: ``log_z_est`` from an *estimator population* (walkers on the
same theta path that never enter the gradient: unbiased given the path, with a genealogy standard error) and
``log_z_coupled`` from the gradient's own walkers (the paper's estimate, biased low by feedback: each update
raises U where those walkers sit).  The baselines use the same walkers without weights: PGD (Kuntz, Lim &
Johansen 2023; theta and walkers step together) and SOUL (De Bortoli et al. 2021; ``chain_steps`` Langevin
steps at fixed theta, the gradient averaged over them).

B independent fits run as one population: the potential maps (B, N, d) -> (B, N) with theta carrying a leading
group dimension, the engine moves the B * N walkers at once and every weight normalisation is per group
(:mod:`ebmlab.lvm.groups`).  Optimisers that act elementwise (SGD, Adam, RMSprop) keep the fits independent.
Row k of the history describes theta_k and the walkers at the start of iteration k.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..sampling import smc
from ..sampling.langevin import LangevinState, refresh
from ..sampling.walkers import Walkers, walkers_to_dict
from ..training import checkpoint as ckpt
from ..training.loop import run_loop
from ..training.validation import DivergenceError, check_int
from .config import METHODS, FitConfig
from .groups import group_log_z, group_log_z_se, group_summary, group_weights, resample_groups, start_groups
from .start import Flat, standard_normal_start

CHECKPOINT_FORMAT = 1
Start = Callable[[int, torch.Generator], tuple[Tensor, Tensor, Tensor]]


class LatentFit:
    """B fits of theta by maximum marginal likelihood (see the module docstring).

    potential: nn.Module (B, N, d) -> (B, N) energies in nats, attributes ``groups`` (B) and ``dim`` (d); its
    parameters are theta, each with leading dimension B (e.g. :class:`~ebmlab.lvm.start.Whitened`).
    optimizer: over the potential's parameters.  config: :class:`FitConfig` (default: JALA-EM, h = 1e-6).
    n_walkers: N per fit.  generator: every random draw.
    log_z0 (B,): the exact log p_theta0(y) when the walkers start from the exact posterior (N(0, I) for a
    whitened potential); None: importance-weighted start (:func:`~ebmlab.lvm.start.standard_normal_start`).
    start(n, generator) -> (x (B, n, d), log-weights (B, n), log Z reference (B,)): another initial sampler.
    """

    def __init__(
        self,
        potential: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        n_walkers: int,
        generator: torch.Generator,
        config: FitConfig | None = None,
        log_z0: Tensor | None = None,
        start: Start | None = None,
    ):
        if not isinstance(potential, nn.Module):
            raise TypeError(f"potential must be an nn.Module (B, N, d) -> (B, N), got {type(potential).__name__}")
        config = FitConfig() if config is None else config
        if not isinstance(config, FitConfig):
            raise TypeError(f"config must be a FitConfig, got {type(config).__name__}")
        self.n_walkers = check_int("n_walkers", n_walkers, 2)
        self.potential, self.optimizer, self.config, self.generator = potential, optimizer, config, generator
        self.groups = int(potential.groups)  # type: ignore[arg-type]  # an int attribute of the potential
        self.params = [p for p in potential.parameters() if p.requires_grad]
        bad = [tuple(p.shape) for p in self.params if p.dim() == 0 or p.shape[0] != self.groups]
        if bad:
            raise ValueError(f"every parameter of the potential needs a leading group dimension {self.groups}: {bad}")
        self.flat = Flat(potential, self.groups)
        if start is None:

            def start(n: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
                return standard_normal_start(potential, n, g, log_z0)  # type: ignore[arg-type]  # needs groups, dim

        self.walkers = self._start(start)
        self.estimator = self._start(start) if config.weighted and config.estimator else None
        self.step_count, self.wall_time_s, self.cpu_time_s = 0, 0.0, 0.0
        self.history: list[dict[str, Any]] = []

    def _start(self, start: Start) -> Walkers:
        x, log_w, ref = start(self.n_walkers, self.generator)
        b, n = self.groups, self.n_walkers
        if x.dim() != 3 or x.shape[:2] != (b, n) or log_w.shape != (b, n) or ref.shape != (b,):
            raise ValueError(
                f"the initial sampler must return x ({b}, {n}, d), log-weights ({b}, {n}) and log Z ({b},); got "
                f"{tuple(x.shape)}, {tuple(log_w.shape)}, {tuple(ref.shape)}"
            )
        walkers = smc.start(self.flat, x.reshape(b * n, -1))
        return start_groups(walkers, log_w, ref)

    # -- what is reported -----------------------------------------------------------------------------------
    def theta(self) -> Tensor:
        """(B, p): every parameter of each group, flattened, detached."""
        return torch.cat([p.detach().reshape(self.groups, -1) for p in self.params], 1).double()

    def weights(self) -> Tensor:
        """The gradient walkers' normalised weights (B, N) (uniform for PGD and SOUL)."""
        if not self.config.weighted:
            return torch.full((self.groups, self.n_walkers), 1.0 / self.n_walkers, dtype=torch.float64)
        return group_weights(self.walkers, self.groups)

    def latents(self) -> Tensor:
        """The gradient walkers' positions (B, N, d) in the potential's coordinates."""
        return self.walkers.x.view(self.groups, self.n_walkers, -1)

    def estimates(self) -> dict[str, Tensor]:
        """Per fit (B,): log_z_est / log_z_se / est_ess_frac (estimator population), log_z_coupled /
        log_z_se_coupled / ess_frac (gradient walkers), for weighted fits."""
        out: dict[str, Tensor] = {}
        if not self.config.weighted:
            return out
        s = group_summary(self.walkers, self.groups)
        out |= {"log_z_coupled": group_log_z(self.walkers, s), "ess_frac": s.ess_fraction}
        if self.walkers.multinomial_only:
            out["log_z_se_coupled"] = group_log_z_se(self.walkers, s)
        if self.estimator is not None:
            s = group_summary(self.estimator, self.groups)
            out |= {"log_z_est": group_log_z(self.estimator, s), "log_z_se": group_log_z_se(self.estimator, s)}
            out["est_ess_frac"] = s.ess_fraction
        return out

    # -- one iteration --------------------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """One iteration; returns its history row (tensors (B,) and (B, p))."""
        t0, c0 = time.perf_counter(), time.process_time()
        row: dict[str, Any] = {"step": self.step_count, "theta": self.theta(), **self.estimates()}
        cfg = self.config
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.method == "soul":
            self._soul_chain()
        else:
            w = self.weights().reshape(-1)
            (w * self.flat(self.walkers.x)).sum().backward()
        self._check_finite(self.step_count, {"the parameter gradient": [cast(Tensor, p.grad) for p in self.params]})
        self.optimizer.step()
        self._check_finite(self.step_count, {"a parameter": self.params})
        if cfg.method == "soul":
            state, _ = refresh(self.walkers.state, self.flat)
            self.walkers = replace(self.walkers, state=state)
        else:
            self.walkers, _ = smc.advance(self.walkers, self.flat, cfg.move, self.generator, weighted=cfg.weighted)
        if self.estimator is not None:
            self.estimator, _ = smc.advance(self.estimator, self.flat, cfg.move, self.generator)
        self._check_walkers()
        if cfg.weighted:
            s = group_summary(self.walkers, self.groups)
            self.walkers, row["resampled"] = resample_groups(
                self.walkers, s, cfg.ess_threshold, cfg.resampler, self.generator
            )
        if self.estimator is not None:
            s = group_summary(self.estimator, self.groups)
            self.estimator, _ = resample_groups(
                self.estimator, s, cfg.estimator_threshold, "multinomial", self.generator
            )
        self.step_count += 1
        self.wall_time_s += time.perf_counter() - t0
        self.cpu_time_s += time.process_time() - c0
        row["wall_s"], row["cpu_s"] = self.wall_time_s, self.cpu_time_s
        self.history.append(row)
        return row

    def _soul_chain(self) -> None:
        """SOUL: ``chain_steps`` unweighted moves at fixed theta; the gradient of the mean U over the
        walkers, averaged over the states the chain visits (accumulated in the parameters' .grad)."""
        m = self.config.chain_steps
        for _ in range(m):
            self.walkers, _ = smc.advance(self.walkers, self.flat, self.config.move, self.generator, weighted=False)
            self._check_walkers()
            (self.flat(self.walkers.x).sum() / (self.n_walkers * m)).backward()

    def _check_finite(self, step: int, named: dict[str, Sequence[Tensor]]) -> None:
        for what, tensors in named.items():
            if not all(bool(torch.isfinite(t).all()) for t in tensors):
                raise DivergenceError(step, f"{what} is NaN or infinite")

    def _check_walkers(self) -> None:
        pops = {"walker": self.walkers, "estimator": self.estimator}
        for what, w in pops.items():
            if w is not None and not bool(torch.isfinite(w.state.energy).all()):
                raise DivergenceError(self.step_count, f"{what} energies are NaN or infinite")
            if w is not None and bool(torch.isnan(w.log_w).any()):
                raise DivergenceError(self.step_count, f"{what} log-weights are NaN")

    # -- driving, results and checkpoints -------------------------------------------------------------------
    def run(
        self,
        n_iters: int,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 100,
        progress: bool | None = None,
        desc: str = "lvm",
    ) -> list[dict[str, Any]]:
        """Iterate until ``step_count == n_iters`` (the trainers' loop: progress bar, periodic checkpoints)."""
        return run_loop(
            self,
            n_iters,
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
            progress=progress,
            desc=desc,
            callback=None,
            postfix=lambda row: {},
        )

    def trajectory(self) -> dict[str, Tensor]:
        """The history stacked: theta and the estimates (K + 1, B[, p]) with row K the current theta_K;
        what an iteration did (``resampled``; cumulative ``wall_s`` and ``cpu_s``, the process's CPU time, a
        steadier clock on a shared machine) (K, B) or (K,)."""
        now = {"theta": self.theta(), **self.estimates()}
        out = {k: torch.stack([*(r[k] for r in self.history), v]) for k, v in now.items()}
        for k in ("resampled", "wall_s", "cpu_s"):
            if self.history and k in self.history[0]:
                out[k] = torch.stack([torch.as_tensor(r[k]) for r in self.history])
        return out

    def settings(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "n_walkers": self.n_walkers,
            "groups": self.groups,
            "potential": type(self.potential).__name__,
            "optimizer": type(self.optimizer).__name__,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Atomic checkpoint: potential, optimiser, both populations, generator, history."""
        pops = {"walkers": self.walkers, "estimator": self.estimator}
        state = {
            "format": CHECKPOINT_FORMAT,
            "settings": self.settings(),
            "potential": self.potential.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **{k: None if w is None else walkers_to_dict(w) for k, w in pops.items()},
            "step": self.step_count,
            "generator": self.generator.get_state(),
            "history": self.history,
            "wall_time_s": self.wall_time_s,
            "cpu_time_s": self.cpu_time_s,
        }
        ckpt.save_atomic(state, path)

    def resume(self, path: str | os.PathLike) -> None:
        """Continue from :meth:`save`'s checkpoint (refused, naming the fields, under other settings)."""
        state = ckpt.load(path)
        ckpt.check_settings(ckpt.nested_move(state, "config"), CHECKPOINT_FORMAT, self.settings())
        self.potential.load_state_dict(state["potential"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.walkers = _walkers(state["walkers"])
        self.estimator = None if state["estimator"] is None else _walkers(state["estimator"])
        self.step_count, self.wall_time_s = int(state["step"]), float(state["wall_time_s"])
        self.cpu_time_s = float(state["cpu_time_s"])
        self.generator.set_state(state["generator"])
        self.history = list(state["history"])


def _walkers(d: dict[str, Any]) -> Walkers:
    state = LangevinState(d["x"], d["energy"], d["grad"])
    return Walkers(state, d["log_w"], d["log_z_ref"], d["eve"], d["n_resamplings"], bool(d["multinomial_only"]))


__all__ = ["METHODS", "FitConfig", "LatentFit"]
