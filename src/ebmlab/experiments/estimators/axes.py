"""The estimator study along Martino's axes: ``--experiment ratio | dimension | offset | proposals``.

Every setting draws ``reps`` independent data sets (one batch) and runs each registry entry once on all of them;
each entry's MSE of log Z comes with its standard error over the replicates and the CPU time it took per
replicate (process time, one thread), given the log densities at the draws (evaluated once beforehand: their
cost is the same for every estimator that reads them).

- ``ratio``: nu = N2 / N1 from 1/8 to 8 at a fixed total N1 + N2, on the d = 2 Gaussian target with standard
  deviations (0.7, 1.3) and q = N(0, 1.5^2 I); every two-sample estimator (NCE with the actual nu), and NCE
  that also learns the parameters of a diagonal-Gaussian EBM (:mod:`.nce_params`): its parameter MSE beside
  its log Z MSE.
- ``dimension``: d in {1, 2, 5, 10, 20, 50}, target N(0.3 * 1, 0.8^2 I), q = N(0, 1.2^2 I) (scale and offset per
  coordinate fixed, so the overlap falls with d).
- ``offset``: target N(0, I) in d = 2, q = N(delta e_1, 0.9^2 I), delta from 0 to 3 target standard deviations
  (a slightly narrower q keeps both IS and reciprocal IS of finite variance, and q never equals the target).
- ``proposals``: a two-mode Gaussian-mixture target in d = 2 with a Gaussian, a Student-t (3 degrees of freedom)
  and a two-component Gaussian-mixture proposal; with the mixture, also standard and deterministic-mixture MIS
  over its components (stratified draws).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch

from ...energies import GaussianMixture
from ...estimators import ESTIMATORS, GaussianNoise, MixtureNoise, Problem, StudentTNoise
from .nce_params import log_normalizer, nce_fit
from .targets import DTYPE, Target, draws, error_summary, science_target, seeded

AXES = ("ratio", "dimension", "offset", "proposals")
TWO_SAMPLE = ("is", "ris", "bridge-geometric", "bridge-optimal", "nce", "rlr")
NUS = (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)
DIMS = (1, 2, 5, 10, 20, 50)
OFFSETS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)


def gaussian_target(name: str, means: Sequence[Sequence[float]], log_w: Sequence[float], stds) -> Target:
    model = GaussianMixture(
        torch.tensor(means, dtype=DTYPE), torch.tensor(log_w, dtype=DTYPE), torch.as_tensor(stds, dtype=DTYPE),
        learn_means=False,
    ).requires_grad_(False)  # fmt: skip
    return Target(name, model, (), 0.0)


def evaluated(problem: Problem) -> Problem:
    """The problem with every log density cached (evaluated once, common to all estimators), so that the CPU times
    measured next are the estimators' own."""
    for name in ("log_phi_x", "log_phi_y", "log_q_x", "log_q_y", "log_psi_x", "log_psi_y"):
        getattr(problem, name)
    return problem


def measured(run: Callable, log_z: float, reps: int) -> dict[str, Any]:
    """:func:`~.targets.error_summary` of one batched run plus its CPU time per replicate in milliseconds."""
    start = time.process_time()
    out = error_summary(run, log_z)
    return out | {"cpu_ms": 1e3 * (time.process_time() - start) / reps}


def _collect(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list]]:
    keys = ("mse", "mse_se", "bias", "coverage", "cpu_ms")
    return {name: {k: [r.get(k, math.nan) for r in v] for k in keys} for name, v in rows.items()}


def _setting(t: Target, proposals, counts, reps: int, n1: int, g: torch.Generator, names) -> dict[str, Any]:
    """One setting: reps data sets (n1 target draws, counts[j] from proposal j) and every estimator in names."""
    x = draws(t.model.sample, reps, n1, g)
    y = torch.cat([draws(q.sample, reps, c, g) for q, c in zip(proposals, counts)], 1)
    problem = evaluated(t.problem(proposals, x, y, list(counts)))
    return {name: measured(partial(ESTIMATORS[name], problem), t.log_z, reps) for name in names}


def run_ratio(reps: int, n1: int, n2: int, seed: int) -> dict[str, Any]:
    t = science_target()
    q = GaussianNoise(torch.zeros(2), 1.5)
    total, g = n1 + n2, seeded(seed)
    rows: dict[str, list] = {name: [] for name in TWO_SAMPLE}
    nce_theta: dict[str, list] = {
        "param_mse": [],
        "param_mse_se": [],
        "log_z_mse": [],
        "log_z_mse_se": [],
        "cpu_ms": [],
    }
    sizes = []
    for nu in NUS:
        m1 = max(2, round(total / (1 + nu)))
        m2 = total - m1
        sizes.append([m1, m2])
        x, y = draws(t.model.sample, reps, m1, g), draws(q.sample, reps, m2, g)
        problem = evaluated(t.problem([q], x, y))
        for name in TWO_SAMPLE:
            rows[name].append(measured(partial(ESTIMATORS[name], problem), t.log_z, reps))
        for k, v in _nce_theta(x, y, q, reps).items():
            nce_theta[k].append(v)
    return {
        "experiment": "ratio", "reps": reps, "seed": seed, "dim": 2, "log_z": t.log_z, "total": total,
        "axis": {"name": "nu = N2 / N1", "values": list(NUS)}, "sizes": sizes,
        "estimators": _collect(rows), "nce_theta": nce_theta,
    }  # fmt: skip


def _nce_theta(x: torch.Tensor, y: torch.Tensor, q: GaussianNoise, reps: int) -> dict[str, float]:
    """NCE learning a diagonal Gaussian's (a, b) and c: the MSE of (a, b) against the target's natural parameters
    and of -c against the exact log Z of the fitted model, each with its SE, and the CPU time per replicate."""
    start = time.process_time()
    theta = nce_fit(x, y, q.log_prob(x), q.log_prob(y))
    cpu = 1e3 * (time.process_time() - start) / reps
    mu, std = torch.tensor([1.0, -0.5], dtype=DTYPE), torch.tensor([0.7, 1.3], dtype=DTYPE)
    truth = torch.cat([mu / std.square(), -0.5 / std.square()])
    p_err = (theta[:, :4] - truth).square().sum(-1)
    z_err = (-theta[:, -1] - log_normalizer(theta)).square()
    sem = lambda v: float(v.std() / math.sqrt(v.numel()))
    return {
        "param_mse": float(p_err.mean()), "param_mse_se": sem(p_err),
        "log_z_mse": float(z_err.mean()), "log_z_mse_se": sem(z_err), "cpu_ms": cpu,
    }  # fmt: skip


def run_dimension(reps: int, n1: int, n2: int, seed: int) -> dict[str, Any]:
    g = seeded(seed)
    rows: dict[str, list] = {name: [] for name in TWO_SAMPLE}
    log_zs = []
    for d in DIMS:
        t = gaussian_target(f"gauss-{d}d", [[0.3] * d], [0.0], [0.8])
        log_zs.append(t.log_z)
        for name, r in _setting(t, [GaussianNoise(torch.zeros(d), 1.2)], [n2], reps, n1, g, TWO_SAMPLE).items():
            rows[name].append(r)
    return {
        "experiment": "dimension", "reps": reps, "seed": seed, "n1": n1, "n2": n2, "log_z": log_zs,
        "axis": {"name": "dimension d", "values": list(DIMS)}, "estimators": _collect(rows),
    }  # fmt: skip


def run_offset(reps: int, n1: int, n2: int, seed: int) -> dict[str, Any]:
    g = seeded(seed)
    t = gaussian_target("std-normal-2d", [[0.0, 0.0]], [0.0], [1.0])
    rows: dict[str, list] = {name: [] for name in TWO_SAMPLE}
    for delta in OFFSETS:
        q = GaussianNoise(torch.tensor([delta, 0.0]), 0.9)
        for name, r in _setting(t, [q], [n2], reps, n1, g, TWO_SAMPLE).items():
            rows[name].append(r)
    return {
        "experiment": "offset", "reps": reps, "seed": seed, "n1": n1, "n2": n2, "log_z": t.log_z,
        "axis": {"name": "proposal offset / target sd", "values": list(OFFSETS)}, "estimators": _collect(rows),
    }  # fmt: skip


def run_proposals(reps: int, n1: int, n2: int, seed: int) -> dict[str, Any]:
    g = seeded(seed)
    t = gaussian_target("gmm-2d", [[-1.5, 0.0], [1.5, 0.0]], [math.log(0.4), math.log(0.6)], [0.6, 0.8])
    parts = [GaussianNoise(torch.tensor([-1.5, 0.0]), 1.0), GaussianNoise(torch.tensor([1.5, 0.0]), 1.0)]
    half = n2 // 2
    setups = {
        "gaussian": ([GaussianNoise(torch.zeros(2), 2.0)], [n2], TWO_SAMPLE),
        "student-t": ([StudentTNoise(torch.zeros(2), 1.5, df=3)], [n2], TWO_SAMPLE),
        "gaussian-mixture (one proposal)": ([MixtureNoise(parts)], [n2], TWO_SAMPLE),
        "gaussian-mixture (stratified, J = 2)": (
            parts,
            [half, n2 - half],
            (*TWO_SAMPLE, "mis-standard", "mis-deterministic-mixture"),
        ),
    }
    names = (*TWO_SAMPLE, "mis-standard", "mis-deterministic-mixture")
    rows: dict[str, list] = {name: [] for name in names}
    for proposals, counts, used in setups.values():
        found = _setting(t, proposals, counts, reps, n1, g, used)
        for name in names:
            rows[name].append(found.get(name, {}))
    return {
        "experiment": "proposals", "reps": reps, "seed": seed, "n1": n1, "n2": n2, "log_z": t.log_z,
        "axis": {"name": "proposal", "values": list(setups)}, "estimators": _collect(rows),
    }  # fmt: skip


RUNS = {"ratio": run_ratio, "dimension": run_dimension, "offset": run_offset, "proposals": run_proposals}
