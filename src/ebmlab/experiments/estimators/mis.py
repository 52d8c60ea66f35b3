"""``--experiment mis``: standard vs deterministic-mixture MIS, RLR variants (unsampled target, fixed or
estimated proposal normalizers) and NCE against one proposal or against their mixture."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ...estimators import ESTIMATORS, Estimate, GaussianNoise, Problem, rlr
from ...uncertainty import se_from_relvar
from ..plotting import plt, save
from .targets import DTYPE, Target, draws, error_summary, science_target, seeded, targets

SCIENCE_MIS_MSE = {
    "mis-standard": 2.25e-2,
    "mis-dm": 6.0e-3,
    "rlr-unsampled-target": 9.1e-3,
    "rlr-target-fixed-proposals": 3.3e-3,
    "rlr-all-estimated": 3.35e-3,
    "nce-q1": 8.0e-3,
}


def mis_setups() -> list[tuple[Target, list[GaussianNoise], int, int]]:
    """(target, proposals, draws per proposal, target draws); the first is the reference d = 2 case
    (docs/estimators.md)."""
    t = {x.name: x for x in targets()}
    e1 = torch.zeros(10, dtype=DTYPE)
    e1[0] = 1.0
    return [
        (
            science_target(),
            [GaussianNoise(torch.tensor([-1.0, 0.0]), 1.5), GaussianNoise(torch.tensor([2.0, 1.0]), 1.0)],
            400,
            200,
        ),
        (t["gmm-1d"], [GaussianNoise(torch.tensor([-2.5]), 1.0), GaussianNoise(torch.tensor([2.0]), 1.5)], 400, 200),
        (t["gmm-10d"], [GaussianNoise(-1.5 * e1, 1.2), GaussianNoise(1.5 * e1, 1.2)], 1000, 500),
    ]


def mis_estimates(p: Problem) -> dict[str, Callable[[], Estimate]]:
    """MIS schemes and their RLR/NCE relatives on one batched problem (J proposals, equal draws each).

    The RLR variants that estimate proposal normalizers are anchored on the mean of the proposals'
    known log Z (= 0)."""
    assert p.counts is not None and p.x is not None and p.y is not None  # a problem with both samples
    n_q = p.counts[0]
    counts = list(p.counts)
    n0 = p.x.shape[-2]
    no_target = torch.cat([p.log_phi_y.unsqueeze(-2), p.log_q_y], -2)
    with_target = torch.cat(
        [torch.cat([p.log_phi_x, p.log_phi_y], -1).unsqueeze(-2), torch.cat([p.log_q_x, p.log_q_y], -1)], -2
    )
    first = Problem(p.log_phi, p.proposals[:1], p.x, p.y[..., :n_q, :])
    return {
        "mis-standard": lambda: ESTIMATORS["mis-standard"](p),
        "mis-dm": lambda: ESTIMATORS["mis-deterministic-mixture"](p),
        "rlr-unsampled-target": lambda: _anchored_on_mean(rlr(no_target, [0, *counts], {1: 0.0})),
        "rlr-target-fixed-proposals": lambda: ESTIMATORS["rlr"](p),
        "rlr-all-estimated": lambda: _anchored_on_mean(rlr(with_target, [n0, *counts], {1: 0.0})),
        "nce-q1": lambda: ESTIMATORS["nce"](first),
        "nce-mixture": lambda: ESTIMATORS["nce"](p),
    }


def _anchored_on_mean(est: Estimate) -> Estimate:
    """Target log Z from an all-estimated RLR, anchored on the mean of the proposals' known log Z = 0:
    log Z_0 - mean_j log Z_j, with its SE from the covariance (contrast c = e_0 - mean_j e_j)."""
    k = est.log_z.shape[-1]
    c = torch.full((k,), -1.0 / (k - 1), dtype=DTYPE)
    c[0] = 1.0
    var = torch.einsum("k,...kl,l->...", c, est.cov, c)
    return Estimate(
        log_z=est.log_z @ c,
        se=se_from_relvar(var),
        method="rlr-anchored-on-mean",
        converged=est.converged,
        iterations=est.iterations,
    )


def run_mis(reps: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for t, proposals, n_q, n0 in mis_setups():
        g = seeded(seed)
        y = torch.cat([draws(q.sample, reps, n_q, g) for q in proposals], 1)
        x = draws(t.model.sample, reps, n0, g)
        problem = t.problem(proposals, x, y, [n_q] * len(proposals))
        rows = {k: error_summary(run, t.log_z) for k, run in mis_estimates(problem).items()}
        entry = {
            "dim": t.dim,
            "log_z": t.log_z,
            "draws_per_proposal": n_q,
            "target_draws": n0,
            "mse": {k: v["mse"] for k, v in rows.items()},
            "details": rows,
        }
        if t.name == "science-2d":
            entry["reference_mse"] = SCIENCE_MIS_MSE
        results[t.name] = entry
    return {"experiment": "mis", "reps": reps, "seed": seed, "targets": results}


def plot_mis(res: dict[str, Any], out: Path, tag: str = "") -> list[Path]:
    names = list(next(iter(res["targets"].values()))["mse"])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(res["targets"])
    for i, (tname, r) in enumerate(res["targets"].items()):
        ax.bar(
            [k + i * width for k in range(len(names))],
            [r["mse"][n] or math.nan for n in names],
            width,
            label=f"{tname} (d={r['dim']})",
        )
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(names))], names, rotation=25, ha="right", fontsize=8)
    ax.set(yscale="log", ylabel=f"MSE of log Z ({res['reps']} reps)", title="MIS schemes and their RLR/NCE relatives")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y", which="both")
    path = out / f"mis_mse{tag}.png"
    save(fig, path)
    return [path]
