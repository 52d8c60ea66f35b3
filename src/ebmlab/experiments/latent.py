"""``ebmlab latent``: latent-space EBM priors, short-run LEBM vs Diffusion-Amortized MCMC (DAMC).

Tasks (each writes ``metrics.json`` and PNGs into ``--out``):

- toy: the 2-D posterior of the DAMC code (fixed random MLP generator, pinwheel latents, N(0, I) prior);
  the sampler's posterior samples vs a long-run Langevin reference: reconstruction errors, MMD, KDE heat maps.
- generate: MNIST generator + EBM prior; per-pixel test MSE, prior-sample grids, and the Frechet distance in
  the feature space of a 10-class classifier trained on a disjoint split (its accuracy is reported).
- anomaly: train on all digits but ``--heldout-digit``; AUPRC of the negative-log-joint score.

MNIST comes from the test set in ``--data-dir`` (or ``$EBMLAB_DATA``).  Splits are seeded and fixed
(independent of ``--seeds``): generate uses a per-digit split with seed 0 into model-train, model-test and
classifier-train images; anomaly shuffles the normal digits with seed 42 (80 % train).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.mnist import load_mnist
from ..data.subsets import split_by_class, to_signed_unit
from ..latent.anomaly import auprc, heldout_split
from ..latent.diffusion import ConvEncoder, LatentDiffusion, MLPEncoder
from ..latent.loop import LatentTrainer, LoopConfig
from ..latent.models import ConvGenerator, LatentEBMPrior, LatentModel
from ..latent.samplers import ChainConfig, DAMCConfig, DAMCSampler, LEBMSampler, config_dict, langevin
from ..latent.toy import kde_grid, mmd_rbf, observe, pinwheel, reconstruction_error, toy_model, train_amortizer
from ..metrics.classifier import accuracy, apply_batched, train_classifier
from ..metrics.frechet import frechet_distance
from .common import exit_code, int_list, run_or_reuse, seed_summary, write_json
from .plotting import plt, save

TASKS = ("toy", "generate", "anomaly")
SAMPLERS = ("lebm", "damc")


@dataclass(frozen=True)
class LatentPreset:
    """All settings of one preset (see docs/latent.md for the design of each)."""

    # diffusion amortiser (DAMC)
    diffusion_steps: int = 20
    nf: int = 2
    t_dim: int = 64
    cond_dim: int = 128
    nif: int = 8
    q_updates: int = 3
    ema_rho: float = 0.005
    ema_every: int = 10
    # toy
    toy_iters: int = 300
    toy_batch: int = 500
    toy_chain_steps: int = 50
    toy_ref_steps: int = 2000
    toy_eval_n: int = 5000
    toy_eval_every: int = 100
    toy_ema_rho: float = 0.75
    toy_nf: int = 4
    # MNIST model
    latent_dim: int = 16
    anomaly_latent_dim: int = 8
    ngf: int = 4
    ebm_hidden: int = 200
    sigma: float = 0.3
    anomaly_sigma: float = 1.0
    batch_size: int = 64
    iters: int = 500
    lr_g: float = 2e-4
    lr_e: float = 1e-4
    lr_q: float = 2e-4
    lebm_energy_reg: float = 1e-3
    prior_steps: int = 60
    lebm_post_steps: int = 20
    damc_post_steps: int = 20
    eval_prior_steps: int = 100
    refine_steps: int = 10
    anomaly_refine_steps: int = 5
    eval_every: int = 250
    # data sizes (per digit for generate; None = all)
    train_per_digit: int | None = 400
    test_per_digit: int = 100
    classifier_per_digit: int = 350
    classifier_epochs: int = 4
    n_generate: int = 1000
    anomaly_max_test: int | None = None
    checkpoint_every: int = 100


PRESETS: dict[str, LatentPreset] = {
    "cpu": LatentPreset(),
    "quick": LatentPreset(
        diffusion_steps=5,
        nf=1,
        t_dim=16,
        cond_dim=16,
        nif=4,
        q_updates=1,
        toy_iters=4,
        toy_batch=100,
        toy_chain_steps=5,
        toy_ref_steps=50,
        toy_eval_n=300,
        toy_eval_every=2,
        toy_nf=1,
        latent_dim=4,
        anomaly_latent_dim=4,
        ngf=2,
        ebm_hidden=16,
        batch_size=16,
        iters=4,
        prior_steps=5,
        lebm_post_steps=3,
        damc_post_steps=3,
        eval_prior_steps=5,
        refine_steps=2,
        anomaly_refine_steps=2,
        eval_every=2,
        train_per_digit=8,
        test_per_digit=4,
        classifier_per_digit=10,
        classifier_epochs=1,
        n_generate=40,
        anomaly_max_test=60,
        checkpoint_every=2,
    ),
    "paper": LatentPreset(
        diffusion_steps=100,
        nf=4,
        t_dim=128,
        cond_dim=1024,
        nif=128,
        q_updates=6,
        toy_iters=3000,
        latent_dim=100,
        anomaly_latent_dim=8,
        ngf=128,
        sigma=0.1,
        anomaly_sigma=1.0,
        batch_size=128,
        iters=100000,
        lebm_post_steps=20,
        damc_post_steps=30,
        eval_every=5000,
        train_per_digit=None,
        classifier_per_digit=300,
        classifier_epochs=10,
        n_generate=10000,
        checkpoint_every=1000,
    ),
}
DEFAULT_SEEDS = {"quick": [0], "cpu": [0], "paper": [0, 1, 2]}


# -- building blocks ------------------------------------------------------------------------------
def build_mnist(
    p: LatentPreset, sampler_name: str, latent_dim: int, sigma: float, refine_steps: int, anomaly: bool = False
) -> tuple[LatentModel, LEBMSampler | DAMCSampler, LoopConfig]:
    """Model, sampler and loop settings of one MNIST run (the global torch seed must be set first).

    anomaly=True takes the DAMC anomaly script's choices: prior chains from Q_bar(x) only, each Q step the
    sum of a fully conditional and a fully unconditional loss, no weight decay.
    """
    model = LatentModel(ConvGenerator(latent_dim, p.ngf), LatentEBMPrior(latent_dim, (p.ebm_hidden,) * 2), sigma)
    common = dict(prior_steps=p.prior_steps, eval_prior_steps=p.eval_prior_steps, refine_steps=refine_steps)
    if sampler_name == "lebm":
        sampler: LEBMSampler | DAMCSampler = LEBMSampler(ChainConfig(post_steps=p.lebm_post_steps, **common))
        energy_reg = p.lebm_energy_reg
    else:
        q = LatentDiffusion(
            latent_dim, ConvEncoder(p.cond_dim, p.nif), p.cond_dim, nf=p.nf, t_dim=p.t_dim, n_steps=p.diffusion_steps
        )
        script = dict(prior_init="posterior", cond_loss="both", weight_decay=0.0) if anomaly else {}
        sampler = DAMCSampler(
            q,
            ChainConfig(post_steps=p.damc_post_steps, **common),
            DAMCConfig(q_updates=p.q_updates, lr=p.lr_q, ema_rho=p.ema_rho, ema_every=p.ema_every, **script),
        )
        energy_reg = 0.0
    loop = LoopConfig(batch_size=p.batch_size, lr_g=p.lr_g, lr_e=p.lr_e, energy_reg=energy_reg)
    return model, sampler, loop


def in_batches(fn, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """fn over x in chunks (gradients allowed inside fn, e.g. Langevin), concatenated."""
    return torch.cat([fn(x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def train(
    trainer: LatentTrainer, p: LatentPreset, ckpt: Path, resume: bool, desc: str, evaluate=None
) -> tuple[float, list[dict[str, Any]]]:
    """Run the loop to p.iters with checkpoints; ``evaluate(trainer)`` every p.eval_every iterations."""
    if resume and ckpt.exists():
        trainer.resume(ckpt)

    def callback(tr: LatentTrainer, row: dict[str, Any]) -> None:
        if evaluate is not None and tr.step_count % p.eval_every == 0 and tr.step_count < p.iters:
            row.update(evaluate(tr))

    start = time.perf_counter()
    trainer.run(p.iters, checkpoint_path=ckpt, checkpoint_every=p.checkpoint_every, desc=desc, callback=callback)
    evals = [r for r in trainer.history if "eval" in r]
    return time.perf_counter() - start, evals


def image_grid(images: torch.Tensor, path: Path, title: str, ncol: int = 10) -> None:
    """Save images (N, 1, 28, 28) in [-1, 1] as a grid PNG."""
    x = images[: (images.shape[0] // ncol) * ncol].clamp(-1, 1).add(1).div(2).squeeze(1).numpy()
    rows = x.shape[0] // ncol
    grid = x.reshape(rows, ncol, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, ncol * 28)
    fig, ax = plt.subplots(figsize=(ncol * 0.6, rows * 0.6 + 0.4))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    save(fig, path)


# -- toy ------------------------------------------------------------------------------------------
def run_toy(p: LatentPreset, sampler_name: str, seed: int, out: Path) -> dict[str, Any]:
    """Toy posterior: the sampler's posterior samples vs the long-run Langevin reference."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = toy_model(seed)
    z_train = pinwheel(p.toy_batch, gen)
    z_eval = pinwheel(p.toy_eval_n, gen)
    x_eval = observe(model, z_eval, gen)
    post = model.posterior_energy(x_eval)
    start = time.perf_counter()
    z_ref = langevin(post, torch.randn(z_eval.shape, generator=gen), p.toy_ref_steps, 0.1, gen)
    ref_time = time.perf_counter() - start
    err_ref = reconstruction_error(model, x_eval, z_ref)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    if sampler_name == "lebm":
        z_s = langevin(post, torch.randn(z_eval.shape, generator=gen), p.toy_chain_steps, 0.1, gen)
    else:
        q = LatentDiffusion(
            2,
            MLPEncoder(2, 128, (128, 128, 128)),
            128,
            nf=p.toy_nf,
            t_dim=p.t_dim,
            n_steps=p.diffusion_steps,
            p_mask=0.1,
        )
        sampler = DAMCSampler(
            q,
            ChainConfig(post_steps=p.toy_chain_steps, post_s=0.1),
            DAMCConfig(
                q_updates=p.q_updates, lr=p.lr_q, weight_decay=1e-2, ema_rho=p.toy_ema_rho, ema_every=p.ema_every
            ),
        )

        def record(it: int, row: dict[str, float]) -> None:
            if it % p.toy_eval_every == 0 or it == p.toy_iters:
                z_q = q.sample(p.toy_eval_n, gen, x=x_eval)
                row.update(iteration=it, error_q=reconstruction_error(model, x_eval, z_q))
                history.append(dict(row))

        train_amortizer(model, sampler, z_train, p.toy_iters, gen, callback=record)
        z_s = q.sample(p.toy_eval_n, gen, x=x_eval)
    wall = time.perf_counter() - start
    metrics = {
        "status": "ok",
        "error_sampler": reconstruction_error(model, x_eval, z_s),
        "error_reference": err_ref,
        "error_true_latents": reconstruction_error(model, x_eval, z_eval),
        "mmd_sampler_vs_reference": mmd_rbf(z_s[:2000], z_ref[:2000]),
        "mmd_reference_vs_true": mmd_rbf(z_ref[:2000], z_eval[:2000]),
        "reference_steps": p.toy_ref_steps,
        "reference_wall_time_s": ref_time,
        "wall_time_s": wall,
        "history": history,
    }
    label = "DAMC q(z|x)" if sampler_name == "damc" else f"short-run LD ({p.toy_chain_steps} steps)"
    panels = [("true latents z", z_eval), (f"long-run LD ({p.toy_ref_steps} steps)", z_ref), (label, z_s)]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    for ax, (title, z) in zip(axes, panels):
        ax.imshow(kde_grid(z), origin="lower", extent=(-4, 4, -4, 4), cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([-4, 0, 4])
        ax.set_yticks([-4, 0, 4])
    fig.suptitle(
        f"aggregate posterior KDE (bandwidth 0.15); error {label}: {metrics['error_sampler']:.3f}, "
        f"long-run LD: {err_ref:.3f}",
        fontsize=10,
    )
    save(fig, out / f"toy_kde_{sampler_name}_seed{seed}.png")
    return metrics


# -- MNIST ----------------------------------------------------------------------------------------
def generate_split(labels: np.ndarray, p: LatentPreset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (seed 0) disjoint per-digit split of the MNIST test set: (model-train, model-test,
    classifier-train) indices; model-train None takes all remaining images."""
    counts = [[p.test_per_digit] * 10, [p.classifier_per_digit] * 10, [p.train_per_digit] * 10]
    test, clf, train_ = split_by_class(labels, range(10), counts, 0)
    return train_, test, clf


def describe(model: LatentModel, sampler: LEBMSampler | DAMCSampler) -> dict[str, Any]:
    """Sampler settings and parameter counts of one run."""
    sizes = {
        "generator": sum(v.numel() for v in model.generator.parameters()),
        "ebm": sum(v.numel() for v in model.prior.parameters()),
    }
    if isinstance(sampler, DAMCSampler):
        sizes["diffusion"] = sum(v.numel() for v in sampler.q.parameters())
    return {
        "sampler_config": config_dict(sampler),
        "parameters": sizes,
        "sigma": model.sigma,
        "latent_dim": model.latent_dim,
    }


def features(clf, images: torch.Tensor) -> torch.Tensor:
    return apply_batched(clf.features, images)


def run_generate(p: LatentPreset, sampler_name: str, seed: int, out: Path, data_dir, resume: bool) -> dict[str, Any]:
    images, labels = load_mnist(data_dir, "test")
    i_train, i_test, i_clf = generate_split(labels, p)
    x_all = to_signed_unit(images)
    y_all = torch.from_numpy(labels)
    start = time.perf_counter()
    clf = train_classifier(x_all[i_clf], y_all[i_clf], 10, epochs=p.classifier_epochs, seed=0)
    clf_acc = accuracy(clf, x_all[i_test], y_all[i_test])
    clf_time = time.perf_counter() - start
    x_train, x_test = x_all[i_train], x_all[i_test]
    feats_test = features(clf, x_test)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, sampler, loop = build_mnist(p, sampler_name, p.latent_dim, p.sigma, p.refine_steps)
    trainer = LatentTrainer(model, sampler, x_train, loop, gen)

    def test_mse(tr: LatentTrainer) -> float:
        z = in_batches(lambda x: tr.sampler.infer(tr.model, x, gen), x_test)
        with torch.no_grad():
            return float(in_batches(lambda zz: tr.model.generator(zz), z).sub(x_test).square().mean())

    def evaluate(tr: LatentTrainer) -> dict[str, Any]:
        return {"eval": True, "test_mse": test_mse(tr)}

    wall, evals = train(
        trainer,
        p,
        out / "checkpoints" / f"generate_{sampler_name}_seed{seed}.pt",
        resume,
        f"generate {sampler_name} seed {seed}",
        evaluate,
    )
    start = time.perf_counter()
    mse = test_mse(trainer)
    n = p.n_generate
    z_s = torch.cat([sampler.generate(model, min(256, n - i), gen) for i in range(0, n, 256)])
    z_ld = LEBMSampler(sampler.chains).generate(model, n, gen)
    with torch.no_grad():
        x_s, x_ld = model.generator(z_s), model.generator(z_ld)
        k = min(50, x_test.shape[0])
        z_rec = sampler.infer(model, x_test[:k], gen)
        x_rec = model.generator(z_rec)
    n_real = min(n, x_train.shape[0])
    metrics = {
        "status": "ok",
        "test_mse": mse,
        "frechet_sampler": frechet_distance(features(clf, x_s), feats_test),
        "frechet_prior_ld": frechet_distance(features(clf, x_ld), feats_test),
        "frechet_real_train_vs_test": frechet_distance(features(clf, x_train[:n_real]), feats_test),
        "classifier_accuracy": clf_acc,
        "classifier_wall_time_s": clf_time,
        "n_train": len(i_train),
        "n_test": len(i_test),
        "n_classifier_train": len(i_clf),
        "n_generated": n,
        "wall_time_s": wall,
        "eval_wall_time_s": time.perf_counter() - start,
        "final_loss_g": trainer.history[-1]["loss_g"],
        "evals": [{"step": r["step"] + 1, "test_mse": r["test_mse"]} for r in evals],
        **describe(model, sampler),
    }
    what = "q_phi(z)" if sampler_name == "damc" else f"prior LD ({sampler.chains.eval_prior_steps} steps)"
    image_grid(
        x_s[:100],
        out / f"samples_{sampler_name}_seed{seed}.png",
        f"{sampler_name.upper()} samples, z ~ {what}; feature FD {metrics['frechet_sampler']:.2f}",
    )
    if sampler_name == "damc":
        image_grid(
            x_ld[:100],
            out / f"samples_prior_ld_{sampler_name}_seed{seed}.png",
            f"DAMC model, z ~ prior LD ({sampler.chains.eval_prior_steps} steps); FD {metrics['frechet_prior_ld']:.2f}",
        )
    pairs = torch.stack([x_test[:k], x_rec]).transpose(0, 1).reshape(2 * k, 1, 28, 28)
    image_grid(
        pairs,
        out / f"reconstructions_{sampler_name}_seed{seed}.png",
        f"{sampler_name.upper()} test reconstructions (pairs: data, reconstruction); MSE {mse:.4f}",
    )
    return metrics


def run_anomaly(
    p: LatentPreset, sampler_name: str, seed: int, digit: int, out: Path, data_dir, resume: bool
) -> dict[str, Any]:
    images, labels = load_mnist(data_dir, "test")
    i_train, i_test, is_anom = heldout_split(labels, digit)
    if p.anomaly_max_test is not None:  # a seeded subsample keeping both classes (quick preset)
        keep = np.sort(np.random.default_rng(42).permutation(len(i_test))[: p.anomaly_max_test])
        i_test, is_anom = i_test[keep], is_anom[keep]
    x_all = to_signed_unit(images)
    x_train, x_test = x_all[i_train], x_all[i_test]

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, sampler, loop = build_mnist(
        p, sampler_name, p.anomaly_latent_dim, p.anomaly_sigma, p.anomaly_refine_steps, anomaly=True
    )
    trainer = LatentTrainer(model, sampler, x_train, loop, gen)

    def scores(tr: LatentTrainer) -> np.ndarray:
        def score(x: torch.Tensor) -> torch.Tensor:
            z = tr.sampler.infer(tr.model, x, gen)
            with torch.no_grad():
                return tr.model.anomaly_score(x, z)

        return in_batches(score, x_test).double().numpy()

    def evaluate(tr: LatentTrainer) -> dict[str, Any]:
        return {"eval": True, "auprc": auprc(is_anom, scores(tr))}

    wall, evals = train(
        trainer,
        p,
        out / "checkpoints" / f"anomaly{digit}_{sampler_name}_seed{seed}.pt",
        resume,
        f"anomaly {digit} {sampler_name} seed {seed}",
        evaluate,
    )
    s = scores(trainer)
    metrics = {
        "status": "ok",
        "heldout_digit": digit,
        "auprc": auprc(is_anom, s),
        "anomaly_fraction": float(is_anom.mean()),
        "n_train": int(x_train.shape[0]),
        "n_test": len(i_test),
        "wall_time_s": wall,
        "evals": [{"step": r["step"] + 1, "auprc": r["auprc"]} for r in evals],
        **describe(model, sampler),
    }
    fig, ax = plt.subplots(figsize=(5, 3.5))
    bins = np.linspace(s.min(), np.quantile(s, 0.99), 50)
    ax.hist(s[is_anom == 0], bins, alpha=0.6, density=True, label="normal")
    ax.hist(s[is_anom == 1], bins, alpha=0.6, density=True, label=f"digit {digit} (anomaly)")
    ax.set_xlabel("score = |x - g(z)|^2 + E(z) + |z|^2/2")
    ax.set_title(f"{sampler_name.upper()}, held-out {digit}: AUPRC {metrics['auprc']:.3f}", fontsize=10)
    ax.legend()
    save(fig, out / f"anomaly{digit}_scores_{sampler_name}_seed{seed}.png")
    return metrics


# -- command --------------------------------------------------------------------------------------
HEADLINE = {
    "toy": ("error_sampler", "error_reference", "mmd_sampler_vs_reference"),
    "generate": ("test_mse", "frechet_sampler", "frechet_prior_ld", "classifier_accuracy"),
    "anomaly": ("auprc",),
}


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=TASKS, required=True, help="toy, generate (MNIST) or anomaly (MNIST)")
    p.add_argument("--sampler", choices=SAMPLERS, required=True, help="lebm (short-run Langevin) or damc")
    p.add_argument("--heldout-digit", type=int, default=None, help="anomaly task: the digit held out (1,4,5,7,9)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="quick",
        help="quick (smoke test, seconds), cpu (about 10 min per seed on one core), paper (GPU)",
    )
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: preset's)")
    p.add_argument("--iters", type=int, default=None, help="override the preset's training iterations")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $EBMLAB_DATA)")
    p.add_argument("--out", type=Path, default=Path("runs/latent"), help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from checkpoints and finished runs in --out")


def main(args: argparse.Namespace) -> int:
    if args.task == "anomaly":
        if args.heldout_digit is None:
            raise ValueError("--task anomaly needs --heldout-digit D (one of 0-9; the papers use 1, 4, 5, 7, 9)")
        if args.heldout_digit not in range(10):
            raise ValueError(f"unknown held-out digit {args.heldout_digit}; choose one of 0-9")
    elif args.heldout_digit is not None:
        raise ValueError(f"--heldout-digit applies only to --task anomaly, not {args.task}")
    preset = PRESETS[args.preset]
    if args.iters is not None:
        if args.iters < 1:
            raise ValueError(f"--iters must be >= 1, got {args.iters}")
        preset = replace(preset, iters=args.iters, toy_iters=args.iters)
    seeds = args.seeds or DEFAULT_SEEDS[args.preset]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{args.task}{args.heldout_digit if args.task == 'anomaly' else ''}_{args.sampler}"
    runs: dict[str, dict[str, Any]] = {}
    for seed in tqdm(seeds, desc=tag, leave=False):
        if args.task == "toy":
            run = partial(run_toy, preset, args.sampler, seed, out)
        elif args.task == "generate":
            run = partial(run_generate, preset, args.sampler, seed, out, args.data_dir, args.resume)
        else:
            run = partial(run_anomaly, preset, args.sampler, seed, args.heldout_digit, out, args.data_dir, args.resume)
        runs[str(seed)] = run_or_reuse(out / "runs" / f"{tag}_seed{seed}.json", run, args.resume, f"{tag} seed {seed}")
    summary = seed_summary(runs.values(), HEADLINE[args.task] + ("wall_time_s",))
    metrics = {
        "task": args.task,
        "sampler": args.sampler,
        "heldout_digit": args.heldout_digit,
        "preset": args.preset,
        "config": asdict(preset),
        "seeds": seeds,
        "summary": summary,
        "runs": runs,
    }
    write_json(metrics, out / "metrics.json")
    for key in HEADLINE[args.task]:
        if f"{key}_mean" in summary:
            print(
                f"{tag} {key}: {summary[key + '_mean']:.4f} (min {summary[key + '_min']:.4f}, "
                f"max {summary[key + '_max']:.4f}, {summary['n_seeds']} seed(s))"
            )
    print(f"wrote {out / 'metrics.json'} and PNGs")
    return exit_code(runs.values())
