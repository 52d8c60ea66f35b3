"""The toy-prior task of ``ebmlab latent``: the DAMC toy's fixed generator and pinwheel latents with a learned
2-D EBM prior; the learned prior against the true latent density by quadrature (cell KL), exact marginal
likelihoods by quadrature against the importance-sampling / log Z estimates, and density heat maps."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...latent.evidence import loglik_metrics, z_score
from ...latent.models import GaussianPrior, LatentEBMPrior, LatentModel
from ...latent.prior_density import (
    cell_centres,
    cell_kl,
    cell_probabilities,
    prior_log_density,
    quadrature_log_marginal,
)
from ...latent.samplers import ChainConfig, DAMCSampler, LEBMSampler
from ...latent.toy import TOY_SIGMA, observe, pinwheel, random_mlp_generator
from ...latent.trainer import LatentTrainer, LoopConfig
from ...latent.weighted_prior import JarzynskiPriorSampler, Sampler
from ..study import RunContext, eval_generator
from .config import energy_reg_of
from .plots import density_panels, loglik_check_plot
from .settings import LatentPreset
from .toy import toy_sampler

LIM, N_GRID = 4.0, 100


def toy_prior_sampler(p: LatentPreset, name: str, device: torch.device) -> Sampler:
    """LEBM: posterior LD from N(0, I) (toy_prior.post_steps, s = 0.1), prior LD (chains.prior_steps); DAMC: the toy
    amortiser with as many posterior steps; jarzynski: weighted walkers with either posterior."""
    steps, c = p.toy_prior.post_steps, p.chains
    chains = ChainConfig(prior_steps=c.prior_steps, post_steps=steps, eval_prior_steps=c.eval_prior_steps)
    posterior = p.posterior if name == "jarzynski" else name
    if posterior == "damc":
        sampler: LEBMSampler | DAMCSampler = toy_sampler(p, device, steps)
    else:
        sampler = LEBMSampler(chains)
    return JarzynskiPriorSampler(sampler, p.walkers) if name == "jarzynski" else sampler


def run_toy_prior(p: LatentPreset, sampler_name: str, ctx: RunContext, compare: list[Path]) -> dict[str, Any]:
    """Train the 2-D prior with one sampler; write the density grids (npz) and PNGs (this run; and, with
    ``compare`` or other samplers' grids of this seed in ``ctx.out``, this run beside every grid of the seed found
    in those directories)."""
    seed, device, out, ckpt, tp = ctx.seed, ctx.device, ctx.out, ctx.checkpoint, p.toy_prior
    torch.manual_seed(seed)
    gen = torch.Generator(device).manual_seed(seed)
    weighted = sampler_name == "jarzynski"
    prior = LatentEBMPrior(2, (tp.hidden,) * 2, zero_init_output=weighted)
    model = LatentModel(random_mlp_generator(seed), prior, TOY_SIGMA).to(device)
    x_train = observe(model, pinwheel(tp.n, gen), gen)
    x_test = observe(model, pinwheel(tp.test_n, gen), gen)
    sampler = toy_prior_sampler(p, sampler_name, device)
    loop = LoopConfig(batch_size=tp.batch, lr_e=tp.lr_e, energy_reg=energy_reg_of(p, sampler_name))
    trainer = LatentTrainer(model, sampler, x_train, loop, gen)
    if ctx.resume and ckpt.exists():
        trainer.resume(ckpt)
    start = time.perf_counter()
    trainer.run(tp.iters, checkpoint_path=ckpt, checkpoint_every=p.training.checkpoint_every, progress=ctx.progress)
    wall = time.perf_counter() - start

    g_eval = eval_generator(seed, tp.iters, device)
    true_cells = cell_probabilities(pinwheel(tp.true_n, g_eval), LIM, N_GRID)
    _, area = cell_centres(LIM, N_GRID)
    log_q, log_z_quad = prior_log_density(model, LIM, N_GRID)
    log_n0, _ = prior_log_density(LatentModel(model.generator, GaussianPrior(2), TOY_SIGMA), LIM, N_GRID)
    ll_quad = quadrature_log_marginal(model, x_test, log_q + math.log(area), LIM, N_GRID)
    ll_true = quadrature_log_marginal(model, x_test, true_cells.clamp_min(1e-300).log(), LIM, N_GRID)
    loglik = loglik_metrics(model, sampler, x_test, p.loglik, g_eval)[0]
    metrics: dict[str, Any] = {
        "status": "ok",
        "kl_true_vs_prior": cell_kl(true_cells, log_q, area),
        "kl_true_vs_standard_normal": cell_kl(true_cells, log_n0, area),
        "log_z_quadrature": log_z_quad,
        "loglik_quadrature": float(ll_quad.mean()),
        "loglik_true_prior_quadrature": float(ll_true.mean()),
        **loglik,
        "loglik_minus_quadrature_in_se": (loglik["loglik"] - float(ll_quad.mean())) / loglik["loglik_se"],
        "log_z_minus_quadrature_in_se": z_score(loglik["log_z"], loglik["log_z_se"], log_z_quad, 0.0),
        "grid": {"lim": LIM, "n": N_GRID},
        "wall_time_s": wall,
        "history_tail": trainer.history[-1],
    }
    z_gen = sampler.generate(model, 5000, g_eval)
    density_panels(
        [
            ("true latents (cell probabilities)", true_cells.numpy() / area),
            (f"learned prior (quadrature), KL {metrics['kl_true_vs_prior']:.3f}", log_q.exp().cpu().numpy()),
            (f"{sampler_name} prior samples (KDE)", z_gen),
        ],
        f"toy prior, {sampler_name}, seed {seed}: KL(true || learned) by quadrature",
        out / f"toy_prior_{sampler_name}_seed{seed}.png",
    )
    np.savez(
        out / f"prior_density_{sampler_name}_seed{seed}.npz",
        density=log_q.exp().cpu().numpy(),
        true=true_cells.numpy() / area,
        kl=metrics["kl_true_vs_prior"],
        sampler=sampler_name,
    )
    loglik_check_plot(
        [(sampler_name, metrics["loglik_ais_check"])],
        f"toy prior, {sampler_name}, seed {seed}: importance sampling vs AIS",
        out / f"loglik_check_{sampler_name}_seed{seed}.png",
    )
    others = [f for f in out.glob(f"prior_density_*_seed{seed}.npz") if f.stem.split("_")[2] != sampler_name]
    if compare or others:  # other samplers' runs: in ``compare`` or earlier in this study (--sampler a,b)
        compare_panels([out, *compare], seed, out / f"toy_prior_comparison_seed{seed}.png")
    return metrics


def compare_panels(dirs: list[Path], seed: int, path: Path) -> None:
    """True density beside the learned prior densities of every run of ``seed`` found in ``dirs``."""
    files = {d: sorted(Path(d).glob(f"prior_density_*_seed{seed}.npz")) for d in dirs}
    missing = [str(d) for d, found in files.items() if not found]
    if missing:
        raise ValueError(f"no prior_density_*_seed{seed}.npz in {missing}: run the toy-prior task there (seed {seed})")
    runs = [np.load(f) for found in files.values() for f in found]
    panels = [("true latent density", runs[0]["true"])]
    panels += [(f"{r['sampler']}: KL {float(r['kl']):.3f}", r["density"]) for r in runs]
    density_panels(panels, f"toy prior densities, seed {seed}: KL(true || learned) by quadrature", path)
