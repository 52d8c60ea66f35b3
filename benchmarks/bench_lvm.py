"""ebmlab.lvm measured in one run:

1. batched vs looped: B JALA-EM fits as one batched population against the same B fits run one after the
   other (a Python loop of single fits), same iterations: the ratio of CPU times loop / batched.
2. feedback bias of the coupled evidence: B Bayesian polynomial regressions (the order-selection setting,
   d_y = 100, p* = 3, candidate order 5) fitted with Adam at several learning rates; at theta_K the mean of
   Z_hat / Z (1 for an unbiased estimator of Z) and the mean log error (nats) of the estimator population and
   of the gradient walkers' own (coupled) estimate, against the closed form.

Usage: python benchmarks/bench_lvm.py [--fits 500] [--iters 200]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from ebmlab.lvm import BayesLinearRegression, LatentFit, exact_whitening, polynomial_features

F64 = torch.float64


def data(b: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = 5 * torch.rand(b, 100, generator=g, dtype=F64) - 2.5
    w = torch.randn(b, 4, 1, generator=g, dtype=F64)
    y = (polynomial_features(t, 3) @ w).squeeze(-1) + math.sqrt(7.5) * torch.randn(b, 100, generator=g, dtype=F64)
    return polynomial_features(t, 5), y


def fit(phi: torch.Tensor, y: torch.Tensor, lr: float, iters: int, seed: int) -> tuple[LatentFit, torch.Tensor]:
    model = BayesLinearRegression.from_data(phi, y, log_sigma2=math.log(7.5) + 1, log_alpha=1.0)
    pot = exact_whitening(model)
    with torch.no_grad():
        log_z0 = model.log_evidence()
    opt = torch.optim.Adam(pot.parameters(), lr=lr)
    f = LatentFit(pot, opt, n_walkers=50, generator=torch.Generator().manual_seed(seed), log_z0=log_z0)
    f.run(iters, progress=False)
    with torch.no_grad():
        return f, model.log_evidence()


def batched_vs_looped(b: int, iters: int, loop: int = 20, blocks: int = 3) -> None:
    """CPU time of this process (the machine may be shared): one batched fit of b models against single fits of
    ``loop`` of them (scaled to b), in alternating blocks after a warm-up; the median of the per-block ratios."""
    phi, y = data(b, 0)
    fit(phi, y, 5e-3, 2, 0)
    ratios = []
    for _ in range(blocks):
        start = time.process_time()
        fit(phi, y, 5e-3, iters, 0)
        batched = time.process_time() - start
        start = time.process_time()
        for i in range(loop):
            fit(phi[i : i + 1], y[i : i + 1], 5e-3, iters, i)
        looped = (time.process_time() - start) * b / loop
        ratios.append(looped / batched)
        print(f"  block: batched {batched:.2f} s, looped (scaled to {b} fits) {looped:.2f} s")
    print(
        f"{b} fits x {iters} iterations: CPU time looped / batched, median of blocks = {statistics.median(ratios):.1f}"
    )


def feedback_bias(b: int, iters: int, lrs: list[float]) -> None:
    phi, y = data(b, 1)
    print("lr      mean Z_hat/Z estimator   coupled            mean log error estimator  coupled   ESS/N")
    for lr in lrs:
        f, exact = fit(phi, y, lr, iters, 1)
        est = f.estimates()
        row = []
        for key in ("log_z_est", "log_z_coupled"):
            r = torch.exp(est[key] - exact)
            row.append(f"{float(r.mean()):.3f} +- {float(r.std() / math.sqrt(b)):.3f}")
        errs = [f"{float((est[k] - exact).mean()):+.3f}" for k in ("log_z_est", "log_z_coupled")]
        print(f"{lr:<7g} {row[0]:<24} {row[1]:<18} {errs[0]:<25} {errs[1]:<9} {float(est['ess_frac'].median()):.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fits", type=int, default=500)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--loop-fits", type=int, default=200, help="fits in the batched-vs-looped timing")
    p.add_argument("--lrs", type=lambda s: [float(v) for v in s.split(",")], default=[5e-3, 2e-2, 5e-2])
    args = p.parse_args()
    torch.set_num_threads(1)
    batched_vs_looped(args.loop_fits, 20)
    feedback_bias(args.fits, args.iters, args.lrs)


if __name__ == "__main__":
    main()
