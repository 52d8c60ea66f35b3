"""Benchmark: ebmlab's rlr against pymbar's MBAR on identical problems, and batched vs looped solves.

Problems are umbrella-sampling-like: K harmonic states u_k(x) = (x - mu_k)^2 / (2 s^2) + c_k on a line
(neighbours overlap), N draws each, exact sampling.  Prints, measured in this run:
  - time ratio ebmlab / pymbar (best of --repeats), target <= 0.5, with pymbar at its default
    tolerance and at a tight one (relative_tolerance 1e-12, the accuracy the comparison needs);
  - max |difference in log Z| between the two (target <= 1e-8);
  - a batch of 100 independent two-state problems solved at once vs one by one.
Run: OMP_NUM_THREADS=1 python benchmarks/bench_rlr.py
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch

from ebmlab.estimators import rlr


def umbrella(k: int, n: int, seed: int) -> tuple[torch.Tensor, list[int]]:
    """log_q (K, K*n) of K harmonic windows over [0, 10] with random offsets, n exact draws each."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.linspace(0, 10, k, dtype=torch.float64)
    s = 1.2 * (mu[1] - mu[0]).item() if k > 1 else 1.0
    offsets = torch.randn(k, generator=g, dtype=torch.float64)
    x = (mu[:, None] + s * torch.randn(k, n, generator=g, dtype=torch.float64)).reshape(-1)
    return offsets[:, None] - (x[None] - mu[:, None]) ** 2 / (2 * s * s), [n] * k


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def pymbar_solve(u_kn: np.ndarray, n_k: np.ndarray, tight: bool) -> np.ndarray:
    import pymbar

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {"relative_tolerance": 1e-12} if tight else {}
        return pymbar.MBAR(u_kn, n_k, verbose=False, **kwargs).f_k


def compare(k: int, n: int, repeats: int) -> dict[str, float]:
    log_q, counts = umbrella(k, n, seed=k)
    u_kn, n_k = -log_q.numpy(), np.array(counts)
    t_ours, est = best_time(lambda: rlr(log_q, counts), repeats)
    t_default, f_default = best_time(lambda: pymbar_solve(u_kn, n_k, False), repeats)
    t_tight, f_tight = best_time(lambda: pymbar_solve(u_kn, n_k, True), repeats)
    ours = -est.log_z.numpy()
    diff = lambda f: float(np.abs((ours - ours[0]) - (f - f[0])).max())
    return {
        "ebmlab_s": t_ours,
        "pymbar_default_s": t_default,
        "pymbar_tight_s": t_tight,
        "ratio_vs_default": t_ours / t_default,
        "ratio_vs_tight": t_ours / t_tight,
        "max_dlogz_vs_default": diff(f_default),
        "max_dlogz_vs_tight": diff(f_tight),
        "iterations": est.iterations,
    }


def batch_vs_loop(b: int, n: int, repeats: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(7)
    shift = 1.0 + torch.rand(b, 1, generator=g, dtype=torch.float64)
    x = torch.cat(
        [
            torch.randn(b, n, generator=g, dtype=torch.float64),
            shift + torch.randn(b, n, generator=g, dtype=torch.float64),
        ],
        1,
    )
    log_q = torch.stack([-0.5 * x**2, -0.5 * (x - shift) ** 2 + 0.3], 1)  # (B, 2, 2n)
    counts = [n, n]
    t_batch, batched = best_time(lambda: rlr(log_q, counts), repeats)
    t_loop, looped = best_time(lambda: torch.stack([rlr(lq, counts).log_z for lq in log_q]), repeats)
    return {
        "batch_s": t_batch,
        "loop_s": t_loop,
        "speedup": t_loop / t_batch,
        "max_dlogz": float((batched.log_z - looped).abs().max()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads 1; best of {args.repeats}")
    for k, n in ((10, 2000), (50, 1000)):
        r = compare(k, n, args.repeats)
        print(
            f"K = {k} x {n}: ebmlab {r['ebmlab_s'] * 1e3:.1f} ms ({r['iterations']} Newton its), pymbar default "
            f"{r['pymbar_default_s'] * 1e3:.1f} ms, tight {r['pymbar_tight_s'] * 1e3:.1f} ms | time ratio "
            f"{r['ratio_vs_default']:.3f} (vs default), {r['ratio_vs_tight']:.3f} (vs tight) | max |dlogZ| "
            f"{r['max_dlogz_vs_default']:.1e} (default), {r['max_dlogz_vs_tight']:.1e} (tight)"
        )
    r = batch_vs_loop(100, 1000, args.repeats)
    print(
        f"100 two-state problems x 2000 samples: batched {r['batch_s'] * 1e3:.1f} ms, one by one "
        f"{r['loop_s'] * 1e3:.1f} ms, speed-up {r['speedup']:.1f}x, max |dlogZ| {r['max_dlogz']:.1e}"
    )


if __name__ == "__main__":
    main()
