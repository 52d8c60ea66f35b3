"""Normalizing-constant estimator experiments in Martino's style, on targets with known Z.

``ebmlab estimators --experiment EXP [--reps R] [--out DIR]`` with EXP one of

- ``noise-scale``: MSE of log Z for IS, reciprocal IS, geometric and optimal bridge, NCE and 2-state
  RLR as the scale s of the proposal/noise q = N(0, s^2 I) varies (Gaussian and Gaussian-mixture
  targets in 1 and 10 dimensions).  PNG: log MSE vs s, one line per estimator.
- ``mis``: standard vs deterministic-mixture MIS, RLR variants (unsampled target, fixed or estimated
  proposal normalizers), NCE against one proposal or against the mixture.
- ``equivalence``: the identities E1-E5 and E7 of the science note evaluated on one data set per target.
- ``nce-gmm``: NCE training of the d = 50 Gaussian-mixture student (Carbone et al.'s GMM study):
  mode masses and log Z against the exact values.

Each writes ``<experiment>.json`` and PNGs into --out.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.ticker import NullFormatter
from torch import Tensor

from ..energies import GaussianMixture
from ..estimators import (
    Estimate,
    EstimatorWarning,
    GaussianNoise,
    bridge,
    importance_sampling,
    mis,
    nce_log_z,
    reciprocal_is,
    rlr,
)
from ..training.nce import train_nce
from .common import write_json
from .plotting import plt, save

DTYPE = torch.float64
EXPERIMENTS = ("noise-scale", "mis", "equivalence", "nce-gmm")
TWO_SAMPLE = ("is", "ris", "bridge-geometric", "bridge-optimal", "nce", "rlr")


@dataclass(frozen=True)
class Target:
    """A target with known log Z: log phi = -U of a Gaussian mixture (unnormalised weights)."""

    name: str
    model: GaussianMixture
    scales: tuple[float, ...]  # proposal scales swept in noise-scale
    equivalence_scale: float

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def log_z(self) -> float:
        with torch.no_grad():
            return float(self.model.log_z())

    def log_phi(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return -self.model(x)


def _mixture(means: list[list[float]], log_w: list[float], stds: list[float] | float) -> GaussianMixture:
    return GaussianMixture(
        torch.tensor(means, dtype=DTYPE),
        torch.tensor(log_w, dtype=DTYPE),
        torch.tensor(stds, dtype=DTYPE),
        learn_means=False,
    )


def targets() -> list[Target]:
    """Gaussian and Gaussian-mixture targets in 1 and 10 dimensions (log Z exact)."""
    e1 = [1.0] + [0.0] * 9
    wide, narrow = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0), (0.6, 0.8, 1.0, 1.4, 2.0, 2.8)
    return [
        Target("gauss-1d", _mixture([[1.0]], [0.4], 0.7), wide, 2.0),
        Target("gmm-1d", _mixture([[-2.0], [1.5]], [math.log(0.3), math.log(0.7)], [0.5, 0.8]), wide, 2.0),
        Target("gauss-10d", _mixture([[0.3] * 10], [0.4], 0.8), narrow, 1.2),
        Target(
            "gmm-10d",
            _mixture([[-1.2 * v for v in e1], [1.2 * v for v in e1]], [math.log(0.4), math.log(0.6)], [0.8, 1.0]),
            narrow,
            1.4,
        ),
    ]


def _draws(sampler: Callable[[int, torch.Generator], Tensor], reps: int, n: int, g: torch.Generator) -> Tensor:
    return sampler(reps * n, g).reshape(reps, n, -1)


def two_sample_data(
    target: Target, noise: GaussianNoise, reps: int, n1: int, n2: int, g: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Batched (reps, N) log phi and log q at target draws x and noise draws y."""
    x = _draws(target.model.sample, reps, n1, g)
    y = _draws(noise.sample, reps, n2, g)
    return target.log_phi(x), noise.log_prob(x), target.log_phi(y), noise.log_prob(y)


def stack_states(*rows: Tensor) -> Tensor:
    """Pool per-state log densities (each (..., K_rows, N_s)) along samples: (..., K, N)."""
    return torch.cat(rows, -1)


def two_sample_estimates(data: tuple[Tensor, Tensor, Tensor, Tensor]) -> dict[str, Callable[[], Estimate]]:
    """The six two-sample estimators on one (batched) data set, evaluated lazily."""
    lpx, lqx, lpy, lqy = data
    log_q = torch.stack([stack_states(lpx, lpy), stack_states(lqx, lqy)], -2)
    return {
        "is": lambda: importance_sampling(lpy, lqy),
        "ris": lambda: reciprocal_is(lpx, lqx),
        "bridge-geometric": lambda: bridge(*data, alpha="geometric"),
        "bridge-optimal": lambda: bridge(*data),
        "nce": lambda: nce_log_z(*data),
        "rlr": lambda: _first_state(rlr(log_q, [lpx.shape[-1], lpy.shape[-1]], {1: 0.0})),
    }


def _first_state(est: Estimate) -> Estimate:
    return Estimate(
        log_z=est.log_z[..., 0],
        se=est.se[..., 0],
        method=est.method,
        converged=est.converged,
        iterations=est.iterations,
        diagnostics=est.diagnostics,
    )


def error_summary(run: Callable[[], Estimate], log_z: float) -> dict[str, Any]:
    """MSE, bias, SE coverage of log Z over the batch; failures and warnings recorded, not hidden."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EstimatorWarning)
        try:
            est = run()
        except ValueError as exc:
            return {"mse": math.nan, "bias": math.nan, "coverage": math.nan, "error": str(exc)}
    err = est.log_z - log_z
    finite = torch.isfinite(err)
    out = {
        "mse": float(err.square().mean()),
        "bias": float(err.mean()),
        "sd": float(err.std()) if err.numel() > 1 else math.nan,
        "coverage": float(((err.abs() <= 1.96 * est.se) & finite).double().mean()),
        "mean_se": float(est.se.mean()),
    }
    if caught:
        out["warnings"] = sorted({str(w.message) for w in caught})
    return out


def run_noise_scale(reps: int, n1: int, n2: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for t in targets():
        g = torch.Generator().manual_seed(seed)
        rows = {name: [] for name in TWO_SAMPLE}
        for s in t.scales:
            data = two_sample_data(t, GaussianNoise(torch.zeros(t.dim), s), reps, n1, n2, g)
            for name, run in two_sample_estimates(data).items():
                rows[name].append(error_summary(run, t.log_z))
        results[t.name] = {
            "dim": t.dim,
            "log_z": t.log_z,
            "scales": list(t.scales),
            "mse": {k: [r["mse"] for r in v] for k, v in rows.items()},
            "details": rows,
        }
    return {"experiment": "noise-scale", "reps": reps, "n1": n1, "n2": n2, "seed": seed, "targets": results}


def plot_noise_scale(res: dict[str, Any], out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, len(res["targets"]), figsize=(4.2 * len(res["targets"]), 3.8))
    for ax, (name, r) in zip(axes, res["targets"].items()):
        for k, (est, mse) in enumerate(r["mse"].items()):
            style = {"ls": "--", "marker": "x"} if est in ("nce", "rlr") else {"marker": "o"}
            ax.plot(
                r["scales"],
                [m if m is not None and m > 0 else math.nan for m in mse],
                label=est,
                lw=2.5 - 0.35 * k,
                ms=4,
                **style,
            )
        ax.set(xscale="log", yscale="log", xlabel="proposal / noise scale s", title=f"{name} (d={r['dim']})")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor-tick labels of a short log axis overlap
        ax.set_xticks(r["scales"], [f"{s:g}" for s in r["scales"]])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"MSE of log Z ({res['reps']} reps)")
    axes[0].legend(fontsize=8, loc="upper center")
    fig.suptitle(
        f"q = N(0, s² I), N1 = {res['n1']} target draws, N2 = {res['n2']} noise draws "
        "(optimal bridge = NCE = RLR exactly)",
        fontsize=10,
    )
    path = out / "noise_scale_mse.png"
    save(fig, path)
    return [path]


def mis_setups() -> list[tuple[Target, list[GaussianNoise], int, int]]:
    """(target, proposals, draws per proposal, target draws); the first is the science note's d = 2 case."""
    sig = torch.tensor([0.7, 1.3], dtype=DTYPE)
    science = Target("science-2d", _AnisotropicGaussian(torch.tensor([1.0, -0.5], dtype=DTYPE), sig), (), 0)
    t = {x.name: x for x in targets()}
    e1 = torch.zeros(10, dtype=DTYPE)
    e1[0] = 1.0
    return [
        (
            science,
            [GaussianNoise(torch.tensor([-1.0, 0.0]), 1.5), GaussianNoise(torch.tensor([2.0, 1.0]), 1.0)],
            400,
            200,
        ),
        (t["gmm-1d"], [GaussianNoise(torch.tensor([-2.5]), 1.0), GaussianNoise(torch.tensor([2.0]), 1.5)], 400, 200),
        (t["gmm-10d"], [GaussianNoise(-1.5 * e1, 1.2), GaussianNoise(1.5 * e1, 1.2)], 1000, 500),
    ]


class _AnisotropicGaussian(GaussianMixture):
    """exp(-sum_j (x_j - mu_j)^2 / (2 sigma_j^2)): a one-component 'mixture' with per-axis scales."""

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__(mean[None], torch.zeros(1, dtype=DTYPE), 1.0, learn_means=False)
        self.axis_std = std

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (((x - self.means[0]) / self.axis_std) ** 2).sum(-1)

    def log_z(self) -> Tensor:
        return 0.5 * self.dim * math.log(2 * math.pi) + self.axis_std.log().sum()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.means[0] + self.axis_std * torch.randn(n, self.dim, generator=generator, dtype=DTYPE)


SCIENCE_MIS_MSE = {
    "mis-standard": 2.25e-2,
    "mis-dm": 6.0e-3,
    "rlr-unsampled-target": 9.1e-3,
    "rlr-target-fixed-proposals": 3.3e-3,
    "rlr-all-estimated": 3.35e-3,
    "nce-q1": 8.0e-3,
}


def mis_estimates(
    lp_y: Tensor, lq_y: Tensor, lp_x: Tensor, lq_x: Tensor, n_q: int
) -> dict[str, Callable[[], Estimate]]:
    """MIS schemes and their RLR/NCE relatives on one batched data set.

    lp_y (R, N_q) target and lq_y (R, J, N_q) proposal log densities at the pooled proposal draws;
    lp_x (R, N0), lq_x (R, J, N0) at the target draws.  The RLR variants that estimate proposal
    normalizers are anchored on the mean of the proposals' known log Z (= 0)."""
    j = lq_y.shape[-2]
    counts = [n_q] * j
    n0 = lp_x.shape[-1]
    fixed = {k: 0.0 for k in range(1, j + 1)}
    no_target = torch.cat([lp_y.unsqueeze(-2), lq_y], -2)
    with_target = torch.cat([torch.cat([lp_x, lp_y], -1).unsqueeze(-2), torch.cat([lq_x, lq_y], -1)], -2)
    log_mix_y = torch.logsumexp(lq_y, -2) - math.log(j)
    log_mix_x = torch.logsumexp(lq_x, -2) - math.log(j)
    return {
        "mis-standard": lambda: mis(lp_y, lq_y, counts, weights="standard"),
        "mis-dm": lambda: mis(lp_y, lq_y, counts),
        "rlr-unsampled-target": lambda: _anchored_on_mean(rlr(no_target, [0] + counts, {1: 0.0})),
        "rlr-target-fixed-proposals": lambda: _first_state(rlr(with_target, [n0] + counts, fixed)),
        "rlr-all-estimated": lambda: _anchored_on_mean(rlr(with_target, [n0] + counts, {1: 0.0})),
        "nce-q1": lambda: nce_log_z(lp_x, lq_x[..., 0, :], lp_y[..., :n_q], lq_y[..., 0, :n_q]),
        "nce-mixture": lambda: nce_log_z(lp_x, log_mix_x, lp_y, log_mix_y),
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
        se=var.clamp_min(0).sqrt(),
        method="rlr-anchored-on-mean",
        converged=est.converged,
        iterations=est.iterations,
    )


def run_mis(reps: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for t, proposals, n_q, n0 in mis_setups():
        g = torch.Generator().manual_seed(seed)
        y = torch.cat([_draws(q.sample, reps, n_q, g) for q in proposals], 1)
        x = _draws(t.model.sample, reps, n0, g)
        lq_y = torch.stack([q.log_prob(y) for q in proposals], -2)
        lq_x = torch.stack([q.log_prob(x) for q in proposals], -2)
        rows = {
            k: error_summary(run, t.log_z)
            for k, run in mis_estimates(t.log_phi(y), lq_y, t.log_phi(x), lq_x, n_q).items()
        }
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


def plot_mis(res: dict[str, Any], out: Path) -> list[Path]:
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
    path = out / "mis_mse.png"
    save(fig, path)
    return [path]


def run_equivalence(n1: int, n2: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for t in targets():
        g = torch.Generator().manual_seed(seed)
        q1 = GaussianNoise(torch.zeros(t.dim), t.equivalence_scale)
        q2 = GaussianNoise(torch.full((t.dim,), 0.5), 0.8 * t.equivalence_scale)
        x, y1, y2 = t.model.sample(n1, g), q1.sample(n2, g), q2.sample(n2, g)
        results[t.name] = {"log_z_true": t.log_z, **equivalence_checks(t, q1, q2, x, y1, y2)}
    return {"experiment": "equivalence", "n1": n1, "n2": n2, "seed": seed, "targets": results}


def _spread(values: dict[str, Tensor]) -> dict[str, Any]:
    v = {k: float(x) for k, x in values.items()}
    return {"values": v, "max_abs_diff": max(v.values()) - min(v.values())}


def equivalence_checks(
    t: Target, q1: GaussianNoise, q2: GaussianNoise, x: Tensor, y1: Tensor, y2: Tensor
) -> dict[str, Any]:
    """E1-E5, E7 on one data set: target draws x, draws y1 ~ q1 and y2 ~ q2; values and max |difference|."""
    n1, n2 = x.shape[0], y1.shape[0]
    data = (t.log_phi(x), q1.log_prob(x), t.log_phi(y1), q1.log_prob(y1))
    lpx, lqx, lpy, lqy = data
    two = torch.stack([torch.cat([lpx, lpy]), torch.cat([lqx, lqy])])
    e = {
        "E1_E2_optimal_bridge_nce_rlr": _spread(
            {
                "bridge_newton": bridge(*data).log_z,
                "bridge_fixed_point": bridge(*data, solver="fixed-point").log_z,
                "nce": nce_log_z(*data).log_z,
                "rlr_noise_known": rlr(two, [n1, n2], {1: 0.0}).log_z[0],
                "rlr_reference": -rlr(two, [n1, n2]).log_z[1],
            }
        ),
        "E4_is_mis_rlr": _spread(
            {
                "is": importance_sampling(lpy, lqy).log_z,
                "dm_mis_J1": mis(lpy, lqy[None], [n2]).log_z,
                "rlr_unsampled_target": rlr(torch.stack([lpy, lqy]), [0, n2], {1: 0.0}).log_z[0],
            }
        ),
        "E5_nu_to_infinity_is": _spread(
            {"bridge_nu_1e40": bridge(*data, nu=1e40).log_z, "is": importance_sampling(lpy, lqy).log_z}
        ),
        "E5_nu_to_zero_ris": _spread(
            {"bridge_nu_1e-40": bridge(*data, nu=1e-40).log_z, "ris": reciprocal_is(lpx, lqx).log_z}
        ),
    }
    pooled = torch.cat([x, y1, y2])
    three = torch.stack([t.log_phi(pooled), q1.log_prob(pooled), q2.log_prob(pooled)])
    counts = [n1, n2, n2]
    newton = rlr(three, counts, {1: 0.0})
    sci = rlr(three, counts, {1: 0.0}, sci_iter=10_000, max_iter=0, tol=1e-13)
    e["E3_rlr_newton_vs_self_consistent_mis"] = _spread({"newton": newton.log_z[0], "self_consistent": sci.log_z[0]})
    proposals = three[:, n1:]
    e["E4_dm_mis_vs_rlr_fixed"] = _spread(
        {
            "dm_mis": mis(proposals[0], proposals[1:], [n2, n2]).log_z,
            "rlr_fixed": rlr(proposals, [0, n2, n2], {1: 0.0, 2: 0.0}).log_z[0],
        }
    )
    se = {
        "mbar": float(rlr(two, [n1, n2], {1: 0.0}).se[0]),
        "meng_wong": float(bridge(*data).se),
        "gutmann_hyvarinen": float(nce_log_z(*data).se),
    }
    e["E7_standard_errors"] = {"values": se, "max_rel_diff": (max(se.values()) - min(se.values())) / se["mbar"]}
    return e


def plot_equivalence(res: dict[str, Any], out: Path) -> list[Path]:
    checks = [k for k in next(iter(res["targets"].values())) if k.startswith("E") and k != "E7_standard_errors"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(res["targets"])
    floor = 1e-17
    for i, (tname, r) in enumerate(res["targets"].items()):
        ax.bar(
            [k + i * width for k in range(len(checks))],
            [max(r[c]["max_abs_diff"], floor) for c in checks],
            width,
            label=tname,
        )
    ax.axhline(1e-10, color="k", ls="--", lw=1, label="1e-10")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(checks))], checks, rotation=20, ha="right", fontsize=7)
    ax.set(
        yscale="log",
        ylabel="max |difference in log Z| (nats)",
        title="Equivalent estimators on the same data (exact 0 drawn at 1e-17)",
    )
    ax.legend(fontsize=8)
    path = out / "equivalence.png"
    save(fig, path)
    return [path]


@dataclass(frozen=True)
class NceGmmConfig:
    """The GMM study's teacher/student (Carbone et al. 2023) trained by NCE against a fitted Gaussian."""

    dim: int = 50
    left: float = -10.0
    right: float = 6.0
    left_mass: float = 0.25
    n_data: int = 10_000
    nu: float = 1.0
    steps: int = 1500
    lr: float = 0.05
    noise_inflate: float = 1.0
    n_eval_noise: int = 100_000


def gmm_teacher_student(cfg: NceGmmConfig, g: torch.Generator) -> tuple[GaussianMixture, Tensor, GaussianMixture]:
    """Teacher, data (exactly floor(n/4) in the left mode), student (equal masses, means near 0, b_0 frozen)."""
    e1 = torch.zeros(cfg.dim, dtype=DTYPE)
    e1[0] = 1.0
    # rho_* propto exp(-|x - a_1|^2/2) + 3 exp(-|x - a_2|^2/2): the student's gauge (b_0 = 0), so the
    # teacher's log Z is the value the student's log Z should reach
    log_w = torch.tensor([0.0, math.log((1 - cfg.left_mass) / cfg.left_mass)], dtype=DTYPE)
    teacher = GaussianMixture(torch.stack([cfg.left * e1, cfg.right * e1]), log_w, learn_means=False)
    n_left = math.floor(cfg.n_data * cfg.left_mass)
    comp = torch.cat([torch.zeros(n_left, dtype=torch.long), torch.ones(cfg.n_data - n_left, dtype=torch.long)])
    data = teacher.sample_components(comp, g)
    means = torch.stack([-0.1 * e1, 0.1 * e1]) + 0.01 * torch.randn(2, cfg.dim, generator=g, dtype=DTYPE)
    return teacher, data, GaussianMixture(means, torch.zeros(2, dtype=DTYPE), frozen=[0])


def run_nce_gmm(cfg: NceGmmConfig, seed: int, progress: bool) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    teacher, data, student = gmm_teacher_student(cfg, g)
    noise = GaussianNoise.fit(data, cfg.noise_inflate)
    start = time.perf_counter()
    fit = train_nce(student, data, noise, generator=g, nu=cfg.nu, steps=cfg.steps, lr=cfg.lr, progress=progress)
    wall = time.perf_counter() - start
    with torch.no_grad():
        y = noise.sample(cfg.n_eval_noise, g)
        post = nce_log_z(-student(data), noise.log_prob(data), -student(y), noise.log_prob(y))
        masses = student.log_masses().exp()
    left = int(torch.argmin(student.means[:, 0]))
    return {
        "experiment": "nce-gmm",
        "seed": seed,
        "config": asdict(cfg),
        "mode_masses": {"left": float(masses[left]), "right": float(masses[1 - left])},
        "target_masses": {"left": cfg.left_mass, "right": 1 - cfg.left_mass},
        "means_e1": student.means[:, 0].tolist(),
        "log_z_learned": fit.log_z,
        "log_z_exact_student": float(student.log_z().detach()),
        "log_z_teacher": float(teacher.log_z().detach()),
        "log_z_posthoc_nce": float(post.log_z),
        "log_z_posthoc_nce_se": float(post.se),
        "wall_time_s": wall,
        "history": {"step": fit.steps, "loss": fit.loss, "log_z": fit.log_z_history},
    }


def plot_nce_gmm(res: dict[str, Any], out: Path) -> list[Path]:
    h = res["history"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.plot(h["step"], h["loss"])
    a.set(xlabel="step", ylabel="NCE loss", yscale="log", title="NCE training (GMM study)")
    b.plot(h["step"], h["log_z"], label="learned log Z")
    b.axhline(res["log_z_exact_student"], color="k", ls="--", label="exact log Z (final student)")
    b.axhline(res["log_z_teacher"], color="tab:red", ls=":", label="teacher log Z")
    lo = min(res["log_z_teacher"], res["log_z_exact_student"]) - 2
    b.set(
        xlabel="step",
        ylabel="log Z (nats)",
        ylim=(lo, lo + 4),
        title=f"mode masses {res['mode_masses']['left']:.3f} / {res['mode_masses']['right']:.3f}",
    )
    b.legend(fontsize=8)
    path = out / "nce_gmm.png"
    save(fig, path)
    return [path]


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", choices=EXPERIMENTS, required=True)
    p.add_argument("--reps", type=int, default=100, help="replicates per setting (noise-scale, mis)")
    p.add_argument("--n1", type=int, default=500, help="target draws (noise-scale, equivalence)")
    p.add_argument("--n2", type=int, default=500, help="proposal/noise draws (noise-scale, equivalence)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="NCE training steps (nce-gmm)")
    p.add_argument("--dim", type=int, default=None, help="dimension of the GMM study (nce-gmm; default 50)")
    p.add_argument("--n-data", type=int, default=None, help="data points of the GMM study (nce-gmm)")
    p.add_argument("--out", type=Path, default=Path("runs/estimators"), help="output directory")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def main(args: argparse.Namespace) -> int:
    if args.reps < 2 or args.n1 < 2 or args.n2 < 2:
        raise SystemExit("--reps, --n1 and --n2 must be at least 2")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.experiment == "noise-scale":
        res, plot = run_noise_scale(args.reps, args.n1, args.n2, args.seed), plot_noise_scale
    elif args.experiment == "mis":
        res, plot = run_mis(args.reps, args.seed), plot_mis
    elif args.experiment == "equivalence":
        res, plot = run_equivalence(args.n1, args.n2, args.seed), plot_equivalence
    else:
        overrides = {k: v for k, v in (("steps", args.steps), ("dim", args.dim), ("n_data", args.n_data)) if v}
        cfg = NceGmmConfig(**overrides)
        res, plot = run_nce_gmm(cfg, args.seed, not args.no_progress), plot_nce_gmm
    pngs = plot(res, args.out)
    path = args.out / f"{args.experiment}.json"
    res["pngs"] = [p.name for p in pngs]
    write_json(res, path)
    print(report(res))
    print(f"wrote {path} and {', '.join(p.name for p in pngs)}")
    return 0


def report(res: dict[str, Any]) -> str:
    """A plain-text table of the headline numbers."""
    exp = res["experiment"]
    lines = []
    if exp in ("noise-scale", "mis"):
        for name, r in res["targets"].items():
            ests = list(r["mse"])
            lines.append(f"{name} (d={r['dim']}, log Z = {r['log_z']:.4f}): MSE of log Z over {res['reps']} reps")
            if exp == "noise-scale":
                lines.append("  s      " + " ".join(f"{e:>16}" for e in ests))
                for i, s in enumerate(r["scales"]):
                    lines.append(f"  {s:<6g} " + " ".join(f"{_fmt(r['mse'][e][i]):>16}" for e in ests))
            else:
                for e in ests:
                    ref = r.get("reference_mse", {}).get(e)
                    lines.append(
                        f"  {e:<28} {_fmt(r['mse'][e]):>10}" + (f"   (science note: {ref:.2e})" if ref else "")
                    )
    elif exp == "equivalence":
        for name, r in res["targets"].items():
            lines.append(
                f"{name}: "
                + ", ".join(
                    f"{k} {v['max_abs_diff']:.1e}" for k, v in r.items() if isinstance(v, dict) and "max_abs_diff" in v
                )
                + f"; E7 SE rel. spread {r['E7_standard_errors']['max_rel_diff']:.3f}"
            )
    else:
        m = res["mode_masses"]
        lines.append(
            f"NCE on the GMM study: mode masses {m['left']:.4f} / {m['right']:.4f} (target 0.25 / 0.75); "
            f"log Z learned {res['log_z_learned']:.4f}, post-hoc NCE {res['log_z_posthoc_nce']:.4f} "
            f"+- {res['log_z_posthoc_nce_se']:.4f}, exact (student) {res['log_z_exact_student']:.4f}, "
            f"teacher {res['log_z_teacher']:.4f}; {res['wall_time_s']:.1f} s"
        )
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "failed" if v is None or not math.isfinite(v) else f"{v:.2e}"
