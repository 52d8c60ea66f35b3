"""The generate task of ``ebmlab latent``: an MNIST generator with a latent EBM prior; per-pixel test MSE,
sample grids, and the Frechet distance in the features of a 10-class classifier trained on a disjoint split
(on the CPU, whatever ``--device``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ...data.mnist import load_mnist
from ...data.subsets import split_by_class, to_signed_unit
from ...latent.diagnostics import pixel_mse
from ...latent.evidence import loglik_metrics
from ...latent.samplers import LEBMSampler
from ...latent.trainer import LatentTrainer
from ...metrics.classifier import accuracy, apply_batched, train_classifier
from ...metrics.frechet import frechet_distance
from ..study import RunContext, eval_generator
from .build import (
    describe,
    diag_images,
    diagnostic_summary,
    mnist_trainer,
    rows_with,
    train,
)
from .plots import amortisation_plot, image_grid, loglik_check_plot
from .settings import LatentPreset


def generate_split(labels: np.ndarray, p: LatentPreset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (seed 0) disjoint per-digit split of the MNIST test set: (model-train, model-test,
    classifier-train) indices; model-train None takes all remaining images."""
    d = p.data
    counts: list[list[int | None]] = [[d.test_per_digit] * 10, [d.classifier_per_digit] * 10, [d.train_per_digit] * 10]
    test, clf, train_ = split_by_class(labels, range(10), counts, 0)
    return train_, test, clf


def run_generate(p: LatentPreset, sampler_name: str, ctx: RunContext) -> dict[str, Any]:
    """Train one (sampler, seed) and evaluate it; writes the sample, reconstruction and diagnostic PNGs."""
    seed, device, out = ctx.seed, ctx.device, ctx.out
    images, labels = load_mnist(ctx.data_dir, "test")
    i_train, i_test, i_clf = generate_split(labels, p)
    x_all = to_signed_unit(images)
    y_all = torch.from_numpy(labels)
    start = time.perf_counter()
    clf = train_classifier(x_all[i_clf], y_all[i_clf], 10, epochs=p.data.classifier_epochs, seed=0)
    clf_acc = accuracy(clf, x_all[i_test], y_all[i_test])
    clf_time = time.perf_counter() - start
    x_train, x_test = x_all[i_train].to(device), x_all[i_test].to(device)

    def features(x: torch.Tensor) -> torch.Tensor:
        return apply_batched(clf.features, x.cpu())

    feats_test = features(x_test)
    trainer = mnist_trainer(
        p, sampler_name, x_train, p.model.latent_dim, p.model.sigma, p.chains.refine_steps, seed, device
    )
    model, sampler, loop = trainer.model, trainer.sampler, trainer.config

    def test_mse(tr: LatentTrainer, g: torch.Generator) -> float:
        return pixel_mse(
            tr.model, x_test, apply_batched(lambda x: tr.sampler.infer(tr.model, x, g), x_test, 256, grad=True)
        )

    def evaluate(tr: LatentTrainer) -> dict[str, Any]:
        return {"test_mse": test_mse(tr, eval_generator(seed, tr.step_count, device))}

    desc = f"generate {sampler_name} seed {seed}"
    wall = train(trainer, p, ctx, desc, evaluate, diag_images(x_train, p.training.diag_n))
    start = time.perf_counter()
    g_eval = eval_generator(seed, p.training.iters, device)
    mse = test_mse(trainer, g_eval)
    n = p.data.n_generate
    z_s = torch.cat([sampler.generate(model, min(256, n - i), g_eval) for i in range(0, n, 256)])
    z_ld = LEBMSampler(sampler.chains).generate(model, n, g_eval)
    k = min(50, x_test.shape[0])
    z_rec = sampler.infer(model, x_test[:k], g_eval)
    with torch.no_grad():
        x_s, x_ld, x_rec = model.generator(z_s), model.generator(z_ld), model.generator(z_rec)
    n_real = min(n, x_train.shape[0])
    loglik = loglik_metrics(model, sampler, x_test, p.loglik, g_eval)[0]
    diag = rows_with(trainer.history, "diag")
    metrics = {
        "status": "ok",
        "test_mse": mse,
        "frechet_sampler": frechet_distance(features(x_s), feats_test),
        "frechet_prior_ld": frechet_distance(features(x_ld), feats_test),
        "frechet_real_train_vs_test": frechet_distance(features(x_train[:n_real]), feats_test),
        "classifier_accuracy": clf_acc,
        "classifier_wall_time_s": clf_time,
        "n_train": len(i_train),
        "n_test": len(i_test),
        "n_classifier_train": len(i_clf),
        "n_generated": n,
        "wall_time_s": wall,
        "eval_wall_time_s": time.perf_counter() - start,
        "final_loss_g": trainer.history[-1]["loss_g"],
        **loglik,
        "evals": rows_with(trainer.history, "eval"),
        **diagnostic_summary(diag),
        **describe(model, sampler, loop),
    }
    name = sampler_name.upper()
    what = {
        "damc": "q_phi(z)",
        "lebm": f"prior LD ({sampler.chains.eval_prior_steps} steps)",
        "jarzynski": "weighted prior walkers + MALA",
    }[sampler_name]
    image_grid(
        x_s[:100],
        out / f"samples_{sampler_name}_seed{seed}.png",
        f"{name} samples, z ~ {what}; feature FD {metrics['frechet_sampler']:.2f}",
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
        f"{name} test reconstructions (pairs: data, reconstruction); MSE {mse:.4f}",
    )
    amortisation_plot(diag, f"{name} generate, seed {seed}", out / f"amortisation_{sampler_name}_seed{seed}.png")
    loglik_check_plot(
        [(name, metrics["loglik_ais_check"])],
        f"{name} generate, seed {seed}: importance sampling vs AIS",
        out / f"loglik_check_{sampler_name}_seed{seed}.png",
    )
    return metrics
