"""``--experiment equivalence``: the identities E1-E5 and E7 of docs/method.md (section 7) evaluated on one data
set per target (max |difference in log Z| between estimators that are the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ...estimators import GaussianNoise, bridge, importance_sampling, mis, nce_log_z, reciprocal_is, rlr
from ..plotting import plt, save
from .targets import Target, seeded, targets


def run_equivalence(n1: int, n2: int, seed: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for t in targets():
        g = seeded(seed)
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


def plot_equivalence(res: dict[str, Any], out: Path, tag: str = "") -> list[Path]:
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
    path = out / f"equivalence{tag}.png"
    save(fig, path)
    return [path]
