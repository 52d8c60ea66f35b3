"""Jarzynski-weighted persistent prior walkers for a latent EBM prior (the ``jarzynski`` sampler).

The prior p_alpha(z) = exp(-E_alpha(z)) N(z; 0, I) / Z_alpha is learned with
grad_alpha = E_post[grad E_alpha] - E_prior[grad E_alpha].  LEBM estimates the prior term with short-run
chains from N(0, I), DAMC with amortised chains; both are unweighted and biased.  Here the prior term
comes from persistent walkers of the library's weighted-walker engine (:mod:`ebmlab.sampling.smc`):

- they start exactly from N(0, I) while E_alpha = 0 (the prior's output layer at zero), so
  log Z_alpha,0 = 0: every log Z below is relative to N(0, I), log Z_alpha = log E_N(0,I)[exp(-E_alpha)];
- at each iteration the engine takes them from the energy of the previous prior update to the current
  one and moves them (ULA with the Jarzynski/SMC increment, or MALA after the AIS reweighting U_old - U_new),
  and resamples them (systematic) when ESS/N falls below the threshold;
- the prior expectation of L_E is sum_i w_i E_alpha(z_i) with the normalised, detached weights
  (:meth:`JarzynskiPriorSampler.prior_weights`; the loop applies them);
- a separate *estimator population*, moved the same way along the same parameter path but never used in
  the gradient, gives the running log Z_alpha with its genealogy standard error (resampled
  multinomially): the gradient's own walkers are biased low by feedback (docs/method.md, section 3).

Posterior chains, the sampler's learning and inference come from a posterior sampler: LEBM (short-run
Langevin from N(0, I)) or DAMC (amortised chains, ``--posterior damc``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from ..errors import check_int
from ..sampling import smc
from ..sampling.langevin import EnergyFn, refresh
from ..sampling.populations import PopulationMove, Populations, advance_populations, estimates
from ..sampling.resampling import Resampling, get_resampler
from ..sampling.walkers import (
    Walkers,
    add_log_weights,
    log_z_estimate,
    log_z_se,
    normalized_weights,
    walkers_from_dict,
    walkers_to_dict,
)
from .models import LatentModel
from .samplers import DAMCSampler, LEBMSampler, config_dict

Posterior = LEBMSampler | DAMCSampler


@dataclass(frozen=True)
class WeightedPriorConfig:
    """Prior walkers: n_walkers for the gradient, log_z_walkers for the estimator population; each iteration
    ``move`` (default: 5 MALA steps of h = 0.08 = s^2/2 with the papers' s = 0.4; ULA takes the Jarzynski
    increment) and ``resampling`` (when ESS/N falls below its threshold; the gradient walkers by its scheme, the
    estimator population multinomially at the same threshold, which the genealogy standard error needs);
    generation draws latents from the weighted walkers and runs eval_steps MALA steps of the move's step size
    at the current prior (invariant, so the law stays p_alpha)."""

    n_walkers: int = 256
    log_z_walkers: int = 256
    move: smc.Move = field(default_factory=lambda: smc.Move("mala", 0.08, n_steps=5))
    resampling: Resampling = field(default_factory=lambda: Resampling(0.5, "systematic"))
    eval_steps: int = 20

    def __post_init__(self) -> None:
        for name, minimum in (("n_walkers", 2), ("log_z_walkers", 2), ("eval_steps", 0)):
            check_int(name, getattr(self, name), minimum)
        if not isinstance(self.move, smc.Move):
            raise TypeError(f"move must be an ebmlab.sampling.smc.Move, got {type(self.move).__name__}")
        if not isinstance(self.resampling, Resampling):
            raise TypeError(f"resampling must be an ebmlab.sampling.resampling.Resampling, got {self.resampling!r}")

    def population_move(self) -> PopulationMove:
        """How the walkers and the estimator population move and resample each iteration."""
        return PopulationMove(self.move, True, self.resampling, replace(self.resampling, scheme="multinomial"))


def reweighted(walkers: Walkers, energy: EnergyFn) -> Walkers:
    """The walkers reweighted, without moving, to ``energy`` (the identity kernel: A += U_old(z) - U_new(z)),
    e.g. to the prior after the last update.  Pure: the input is unchanged."""
    state, inc = refresh(walkers.state, energy)
    return add_log_weights(replace(walkers, state=state), inc)


def current_log_z(walkers: Walkers, energy: EnergyFn) -> tuple[float, float]:
    """(log Z, standard error) in nats of ``energy`` relative to the walkers' start, from the walkers
    reweighted to it (:func:`reweighted`)."""
    w = reweighted(walkers, energy)
    return float(log_z_estimate(w)), float(log_z_se(w))


def posterior_of(sampler: Posterior | JarzynskiPriorSampler) -> Posterior:
    """The sampler that makes the posterior chains (the sampler itself for LEBM and DAMC)."""
    return sampler.posterior if isinstance(sampler, JarzynskiPriorSampler) else sampler


class JarzynskiPriorSampler:
    """Weighted persistent prior walkers + a posterior sampler (LEBM or DAMC); see the module docstring.

    The walkers are started at the first :meth:`training_chains` call, which must see the prior with
    E_alpha = 0 (build it with ``LatentEBMPrior(..., zero_init_output=True)``).
    """

    name = "jarzynski"

    def __init__(self, posterior: Posterior, config: WeightedPriorConfig = WeightedPriorConfig()):
        if not isinstance(posterior, (LEBMSampler, DAMCSampler)):
            raise TypeError(f"posterior must be an LEBMSampler or a DAMCSampler, got {type(posterior).__name__}")
        self.posterior, self.config = posterior, config
        self.chains = posterior.chains
        self.walkers: Walkers | None = None
        self.estimator: Walkers | None = None
        self.iteration = 0  # training_chains calls so far (named by a DivergenceError)
        self._report: dict[str, Any] = {}

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The posterior sampler's optimiser (DAMC), for the loop's learning-rate decay."""
        return getattr(self.posterior, "optimizer", None)

    def _start(self, model: LatentModel, generator: torch.Generator) -> None:
        cfg, n = self.config, self.config.n_walkers
        p = next(model.parameters())
        z = torch.randn(n + cfg.log_z_walkers, model.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        with torch.no_grad():
            e0 = model.prior.energy(z)
        if bool(e0.abs().max() > 0):
            raise ValueError(
                f"the jarzynski sampler starts its walkers from N(0, I), which needs E_alpha = 0 at the start "
                f"(max |E_alpha| = {float(e0.abs().max()):.3g}): build the prior with "
                "LatentEBMPrior(..., zero_init_output=True)"
            )
        self.walkers = smc.start(model.prior_energy, z[:n], 0.0)
        self.estimator = smc.start(model.prior_energy, z[n:], 0.0)

    def posterior_chains(self, model: LatentModel, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The posterior sampler's (start, refined) posterior chains."""
        return self.posterior.posterior_chains(model, x, generator)

    def training_chains(self, model: LatentModel, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(z_pos from the posterior sampler, the prior walkers (N, d) taken to the current prior); the
        estimator population is taken along too.  Their weights: :meth:`prior_weights`."""
        z_pos = self.posterior_chains(model, x, generator)[1]
        if self.walkers is None:
            self._start(model, generator)
        assert self.walkers is not None  # set by _start
        pops, info = advance_populations(
            Populations(self.walkers, self.estimator),
            model.prior_energy,
            self.config.population_move(),
            generator,
            iteration=self.iteration,
        )
        self.walkers, self.estimator, self.iteration = pops.walkers, pops.estimator, self.iteration + 1
        est = estimates(pops, info.summaries)
        self._report = {
            "prior_ess_frac": est["ess_frac"],
            "prior_resampled": info.resampled,
            "log_z_prior": est["log_z_est"],
            "log_z_prior_se": est["log_z_se"],
            "log_z_prior_coupled": est["log_z_est_coupled"],
            "estimator_ess_frac": est["est_ess_frac"],
            "estimator_resampled": info.estimator_resampled,
        }
        if info.accept_rate is not None:
            self._report["prior_accept_rate"] = info.accept_rate
        return z_pos, pops.walkers.x

    def prior_weights(self) -> Tensor:
        """Normalised, detached weights (N,) of the prior samples of the last :meth:`training_chains`."""
        if self.walkers is None:
            raise ValueError("no prior walkers yet: call training_chains first")
        return normalized_weights(self.walkers.log_w).to(self.walkers.x.dtype)

    def learn(self, x: Tensor, z_pos: Tensor, generator: torch.Generator) -> dict[str, Any]:
        """The posterior sampler's update (DAMC) and the walkers' record of this iteration (theta_k):
        prior ESS/N, resampled, log Z_alpha of the estimator population with its SE, the coupled estimate."""
        return {**self.posterior.learn(x, z_pos, generator), **self._report}

    def infer(
        self, model: LatentModel, x: Tensor, generator: torch.Generator, refine_steps: int | None = None
    ) -> Tensor:
        """The posterior sampler's latents for reconstruction and anomaly scores."""
        return self.posterior.infer(model, x, generator, refine_steps)

    def log_z(self, model: LatentModel) -> tuple[float, float]:
        """(log Z_alpha, SE) in nats relative to N(0, I) at the current prior, from the estimator population."""
        if self.estimator is None:
            raise ValueError("no prior walkers yet: train first (log Z_alpha = 0 before the first update)")
        return current_log_z(self.estimator, model.prior_energy)

    def generate(self, model: LatentModel, n: int, generator: torch.Generator) -> Tensor:
        """n latents: multinomial draws from the walkers reweighted to the current prior, then
        ``eval_steps`` MALA steps at that prior (which leave p_alpha invariant and separate duplicates)."""
        if self.walkers is None:
            raise ValueError("no prior walkers yet: train first")
        w = reweighted(self.walkers, model.prior_energy)
        idx = get_resampler("multinomial")(normalized_weights(w.log_w), n, generator)
        z = w.x[idx]
        if self.config.eval_steps == 0:
            return z
        draws = smc.start(model.prior_energy, z)
        move = smc.Move("mala", self.config.move.step_size, n_steps=self.config.eval_steps)
        return smc.advance(draws, model.prior_energy, move, generator, weighted=False)[0].x

    def describe(self) -> dict[str, Any]:
        """Settings as plain data (for metrics.json)."""
        return {**config_dict(self.posterior), "name": self.name, "posterior": self.posterior.name} | {
            "weighted_prior": asdict(self.config)
        }

    def state_dict(self) -> dict[str, Any]:
        def pack(w: Walkers | None) -> dict[str, Any] | None:
            return None if w is None else walkers_to_dict(w)

        return {
            "posterior": self.posterior.state_dict(),
            "walkers": pack(self.walkers),
            "estimator": pack(self.estimator),
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (
            not {"posterior", "walkers", "estimator"}
            <= set(state)
            <= {"posterior", "walkers", "estimator", "iteration"}
        ):
            raise ValueError(f"not a jarzynski sampler state (keys {sorted(state)}): written by another sampler?")
        self.posterior.load_state_dict(state["posterior"])
        self.walkers = None if state["walkers"] is None else walkers_from_dict(state["walkers"])
        self.estimator = None if state["estimator"] is None else walkers_from_dict(state["estimator"])
        self.iteration = int(state.get("iteration", 0))


# every latent sampler (prior and posterior chains, learning, inference): what the latent trainer drives
Sampler = LEBMSampler | DAMCSampler | JarzynskiPriorSampler
"""Any of the latent samplers that :class:`~ebmlab.latent.LatentTrainer` drives."""


def sampler_settings(sampler: Sampler) -> dict[str, Any]:
    """Any latent sampler's settings as plain data (metrics.json, and what a checkpoint must agree with)."""
    return sampler.describe() if isinstance(sampler, JarzynskiPriorSampler) else config_dict(sampler)
