"""The anomaly task of ``ebmlab latent``: train on all digits but the held-out one; AUPRC of the
negative-log-joint score at the end (``auprc``) and the best over the periodic evaluations, which is selected
on the test set as the reference does (``auprc_best_test_selected``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...data.mnist import FILES, load_mnist, resolve_data_dir
from ...data.subsets import to_signed_unit
from ...latent.anomaly import auprc, heldout_split
from ...latent.evidence import loglik_metrics
from ...latent.models import LatentModel
from ...latent.trainer import LatentTrainer
from ...metrics.classifier import apply_batched
from ..study import RunContext, eval_generator
from .build import (
    Sampler,
    describe,
    diag_images,
    diagnostic_summary,
    mnist_trainer,
    rows_with,
    train,
)
from .plots import amortisation_plot, score_histogram
from .settings import LatentPreset


def anomaly_data(data_dir: str | None, pool_train: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """MNIST images (N, 28, 28) uint8, labels (N,) and a note on what was used: with ``pool_train`` and the
    training files in the directory, the 60 000 training images followed by the 10 000 test images (the
    reference pools all splits); otherwise the test set."""
    images, labels = load_mnist(data_dir, "test")
    have_train = all((resolve_data_dir(data_dir) / f).is_file() for f in FILES["train"])
    if pool_train and have_train:
        tr_images, tr_labels = load_mnist(data_dir, "train")
        images, labels = np.concatenate([tr_images, images]), np.concatenate([tr_labels, labels])
        return images, labels, {"source": "train+test", "n_images": len(labels)}
    note = {"source": "test", "n_images": len(labels)}
    if pool_train:
        note["note"] = (
            f"the preset pools the training set as the reference does, but {', '.join(FILES['train'])} are not "
            "in the data directory: the 10 000 test images only"
        )
    return images, labels, note


def anomaly_scores(model: LatentModel, sampler: Sampler, x: torch.Tensor, gen: torch.Generator) -> np.ndarray:
    """Negative-log-joint scores (N,) at the sampler's inferred latents (higher = more anomalous)."""

    def score(xb: torch.Tensor) -> torch.Tensor:
        z = sampler.infer(model, xb, gen)
        with torch.no_grad():
            return model.anomaly_score(xb, z)

    return apply_batched(score, x, 256, grad=True).double().cpu().numpy()


def best_of(evals: list[dict[str, Any]], final: float, iters: int) -> dict[str, Any]:
    """The best AUPRC over the periodic evaluations and the final one, with its iteration."""
    points = [(r["auprc"], r["step"]) for r in evals] + [(final, iters)]
    best, step = max(points, key=lambda t: t[0])
    return {"auprc_best_test_selected": best, "auprc_best_iteration": step}


def run_anomaly(p: LatentPreset, sampler_name: str, ctx: RunContext, digit: int) -> dict[str, Any]:
    """Train one (sampler, seed) on the normal digits but ``digit`` and score the test set; writes the score
    histogram and the diagnostic PNG."""
    seed, device, out, a, iters = ctx.seed, ctx.device, ctx.out, p.anomaly, p.training.iters
    images, labels, data_note = anomaly_data(ctx.data_dir, a.pool_train)
    i_train, i_test, is_anom = heldout_split(labels, digit)
    if a.max_test is not None:  # a seeded subsample keeping both classes (quick preset)
        keep = np.sort(np.random.default_rng(42).permutation(len(i_test))[: a.max_test])
        i_test, is_anom = i_test[keep], is_anom[keep]
    x_all = to_signed_unit(images)
    x_train, x_test = x_all[i_train].to(device), x_all[i_test].to(device)

    sigma = a.sigma_of(digit)
    trainer = mnist_trainer(p, sampler_name, x_train, a.latent_dim, sigma, a.refine_steps, seed, device, anomaly=True)
    model, sampler, loop = trainer.model, trainer.sampler, trainer.config

    def evaluate(tr: LatentTrainer) -> dict[str, Any]:
        g = eval_generator(seed, tr.step_count, device)
        return {"auprc": auprc(is_anom, anomaly_scores(tr.model, tr.sampler, x_test, g))}

    desc = f"anomaly {digit} {sampler_name} seed {seed}"
    wall = train(trainer, p, ctx, desc, evaluate, diag_images(x_train, p.training.diag_n))
    s = anomaly_scores(model, sampler, x_test, eval_generator(seed, iters, device))
    final = auprc(is_anom, s)
    g_eval = eval_generator(seed, iters, device)
    loglik, log_p_t = loglik_metrics(model, sampler, x_test, p.loglik, g_eval, check=False)
    log_p = log_p_t.cpu().numpy()
    evals = rows_with(trainer.history, "eval")
    diag = rows_with(trainer.history, "diag")
    metrics = {
        "status": "ok",
        "heldout_digit": digit,
        "auprc": final,
        "auprc_neg_loglik": auprc(is_anom, -log_p),
        "loglik_normal": float(log_p[is_anom == 0].mean()),
        "loglik_anomalous": float(log_p[is_anom == 1].mean()),
        **loglik,
        **best_of(evals, final, iters),
        "anomaly_fraction": float(is_anom.mean()),
        "n_train": int(x_train.shape[0]),
        "n_test": len(i_test),
        "data": data_note,
        "wall_time_s": wall,
        "evals": evals,
        **diagnostic_summary(diag),
        **describe(model, sampler, loop),
    }
    name = sampler_name.upper()
    title = f"{name}, held-out {digit} (sigma {sigma:g}): AUPRC {final:.3f}"
    score_histogram(s, is_anom, digit, title, out / f"anomaly{digit}_scores_{sampler_name}_seed{seed}.png")
    amortisation_plot(
        diag,
        f"{name} anomaly, held-out {digit}, seed {seed}",
        out / f"anomaly{digit}_amortisation_{sampler_name}_seed{seed}.png",
    )
    return metrics
