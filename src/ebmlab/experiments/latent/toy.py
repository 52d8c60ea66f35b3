"""The toy task of ``ebmlab latent``: the DAMC code's 2-D posterior, the sampler's posterior samples vs a
long-run Langevin reference (reconstruction errors, MMD, KDE heat maps)."""

from __future__ import annotations

import time
from typing import Any

import torch

from ...latent.diffusion import LatentDiffusion, MLPEncoder
from ...latent.samplers import ChainConfig, DAMCConfig, DAMCSampler, langevin
from ...latent.toy import mmd_rbf, observe, pinwheel, reconstruction_error, toy_model, train_amortizer
from ..study import RunContext
from .plots import toy_kde
from .settings import LatentPreset


def toy_sampler(p: LatentPreset, device: torch.device, chain_steps: int) -> DAMCSampler:
    """The DAMC code's toy amortiser with ``chain_steps`` posterior steps: MLP encoder, p_mask 0.1, weight decay
    1e-2, its own EMA rate."""
    q = LatentDiffusion(
        2,
        MLPEncoder(2, 128, (128, 128, 128)),
        128,
        nf=p.toy.nf,
        t_dim=p.amortiser.t_dim,
        n_steps=p.amortiser.diffusion_steps,
        p_mask=0.1,
    ).to(device)
    return DAMCSampler(
        q,
        ChainConfig(post_steps=chain_steps, post_s=0.1),
        DAMCConfig(
            q_updates=p.amortiser.q_updates,
            lr=p.training.lr_q,
            weight_decay=1e-2,
            ema_rho=p.toy.ema_rho,
            ema_every=p.amortiser.ema_every,
        ),
    )


def run_toy(p: LatentPreset, sampler_name: str, ctx: RunContext) -> dict[str, Any]:
    """Toy posterior: the sampler's posterior samples vs the long-run Langevin reference."""
    seed, device, toy = ctx.seed, ctx.device, p.toy
    torch.manual_seed(seed)
    gen = torch.Generator(device).manual_seed(seed)
    model = toy_model(seed).to(device)
    z_train = pinwheel(toy.batch, gen)
    z_eval = pinwheel(toy.eval_n, gen)
    x_eval = observe(model, z_eval, gen)
    post = model.posterior_energy(x_eval)
    start = time.perf_counter()
    z_ref = langevin(post, torch.randn(z_eval.shape, generator=gen, device=device), toy.ref_steps, 0.1, gen)
    ref_time = time.perf_counter() - start
    err_ref = reconstruction_error(model, x_eval, z_ref)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    if sampler_name == "lebm":
        z_s = langevin(post, torch.randn(z_eval.shape, generator=gen, device=device), toy.chain_steps, 0.1, gen)
    else:
        sampler = toy_sampler(p, device, toy.chain_steps)

        def record(it: int, row: dict[str, float]) -> None:
            if it % toy.eval_every == 0 or it == toy.iters:
                z_q = sampler.q.sample(toy.eval_n, gen, x=x_eval)
                row.update(iteration=it, error_q=reconstruction_error(model, x_eval, z_q))
                history.append(dict(row))

        train_amortizer(model, sampler, z_train, toy.iters, gen, callback=record)
        z_s = sampler.q.sample(toy.eval_n, gen, x=x_eval)
    wall = time.perf_counter() - start
    metrics = {
        "status": "ok",
        "error_sampler": reconstruction_error(model, x_eval, z_s),
        "error_reference": err_ref,
        "error_true_latents": reconstruction_error(model, x_eval, z_eval),
        "mmd_sampler_vs_reference": mmd_rbf(z_s[:2000], z_ref[:2000]),
        "mmd_reference_vs_true": mmd_rbf(z_ref[:2000], z_eval[:2000]),
        "reference_steps": toy.ref_steps,
        "reference_wall_time_s": ref_time,
        "wall_time_s": wall,
        "history": history,
    }
    label = "DAMC q(z|x)" if sampler_name == "damc" else f"short-run LD ({toy.chain_steps} steps)"
    toy_kde(
        [("true latents z", z_eval), (f"long-run LD ({toy.ref_steps} steps)", z_ref), (label, z_s)],
        f"aggregate posterior KDE (bandwidth 0.15); error {label}: {metrics['error_sampler']:.3f}, "
        f"long-run LD: {err_ref:.3f}",
        ctx.out / f"toy_kde_{sampler_name}_seed{seed}.png",
    )
    return metrics
