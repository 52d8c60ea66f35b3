"""Benchmark: ebmlab's rlr against pymbar's MBAR (JAX backend), batched vs looped, and bounded memory.

Problems are umbrella-sampling-like: K harmonic states u_k(x) = (x - mu_k)^2 / (2 s^2) + c_k on a line
(neighbours overlap), N draws each, exact sampling.  Prints, measured side by side in this run
(interleaved rounds, medians of wall time and of this process's CPU time):
  - time ratio ebmlab / pymbar MBAR with its JAX backend at K = 10 x 2000 (target <= 0.1) and
    K = 50 x 1000 (target <= 0.15), pymbar at its default and at a tight tolerance (relative
    tolerance 1e-12), and the max |difference in log Z| (target <= 1e-8).  Needs pymbar and jax
    (``pip install pymbar jax``); the column is skipped with a message when either is missing;
  - 100 independent two-state problems solved as one batch vs one by one (target >= 10x);
  - peak memory (resident set, in a fresh process) of K = 100 states x 1e4 samples each passed as a
    callable evaluated in chunks, against the same problem held in memory (``--in-memory``: about
    4 GB), and the agreement of the two paths on a smaller problem.
Run: OMP_NUM_THREADS=1 python benchmarks/bench_rlr.py [--rounds 7] [--in-memory]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

# one thread for JAX's XLA too (set before jax is imported)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import torch

from ebmlab.estimators import rlr


def umbrella(k: int, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """K harmonic windows over [0, 10] with random offsets: (x (K*n,) exact draws, mu, offsets, s)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.linspace(0, 10, k, dtype=torch.float64)
    s = 1.2 * (mu[1] - mu[0]).item() if k > 1 else 1.0
    offsets = torch.randn(k, generator=g, dtype=torch.float64)
    x = (mu[:, None] + s * torch.randn(k, n, generator=g, dtype=torch.float64)).reshape(-1)
    return x, mu, offsets, s


def umbrella_log_q(x: torch.Tensor, mu: torch.Tensor, offsets: torch.Tensor, s: float) -> torch.Tensor:
    """log_q (K, len(x)) of the harmonic windows at x."""
    return offsets[:, None] - (x[None] - mu[:, None]) ** 2 / (2 * s * s)


def interleaved(fns: dict[str, object], rounds: int) -> tuple[dict[str, float], dict[str, float], dict[str, object]]:
    """Median wall time and median CPU time of this process (s) of each function over interleaved
    rounds, and its last result.  On a shared machine the CPU time is the steadier of the two."""
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    out: dict[str, object] = {}
    for name, fn in fns.items():  # warm-up (JIT compilation, caches)
        out[name] = fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            out[name] = fn()
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    median = lambda d: {name: statistics.median(v) for name, v in d.items()}
    return median(wall), median(cpu), out


def pymbar_with_jax() -> tuple[object | None, str]:
    """pymbar's MBAR if pymbar runs on JAX here, else None and the reason."""
    try:
        import jax
    except ImportError:
        return None, "jax is not installed (pip install jax): pymbar-JAX column skipped"
    try:
        import pymbar
        from pymbar import mbar_solvers
    except ImportError:
        return None, "pymbar is not installed (pip install pymbar): pymbar-JAX column skipped"
    if not getattr(mbar_solvers, "use_jit", True) or getattr(mbar_solvers, "force_no_jax", False):
        return None, "pymbar did not enable its JAX backend: pymbar-JAX column skipped"
    return pymbar.MBAR, "pymbar " + pymbar.__version__ + " with jax " + jax.__version__


def compare(k: int, n: int, rounds: int, mbar) -> str:
    x, mu, offsets, s = umbrella(k, n, seed=k)
    log_q, counts = umbrella_log_q(x, mu, offsets, s), [n] * k
    fns = {"ebmlab": lambda: rlr(log_q, counts)}
    if mbar is not None:
        u_kn, n_k = (-log_q).numpy(), torch.tensor(counts).numpy()

        def run_mbar(**kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return mbar(u_kn, n_k, verbose=False, **kwargs).f_k

        fns["pymbar"] = run_mbar
        fns["pymbar_tight"] = lambda: run_mbar(relative_tolerance=1e-12)
    t, c, out = interleaved(fns, rounds)
    est = out["ebmlab"]
    line = f"K = {k} x {n}: ebmlab {t['ebmlab'] * 1e3:.1f} ms (CPU {c['ebmlab'] * 1e3:.1f} ms, {est.iterations} its)"
    if mbar is None:
        return line
    f = -est.log_z.numpy()
    diff = lambda g: float(abs((f - f[0]) - (g - g[0])).max())
    ratio = lambda d, peer: d["ebmlab"] / d[peer]
    return line + (
        f", pymbar-JAX {t['pymbar'] * 1e3:.1f} ms (CPU {c['pymbar'] * 1e3:.1f}; tight {t['pymbar_tight'] * 1e3:.1f}) | "
        f"time ratio {ratio(t, 'pymbar'):.3f} (CPU time {ratio(c, 'pymbar'):.3f}; vs tight "
        f"{ratio(t, 'pymbar_tight'):.3f}, CPU {ratio(c, 'pymbar_tight'):.3f}) | max |dlogZ| {diff(out['pymbar']):.1e} "
        f"(tight {diff(out['pymbar_tight']):.1e})"
    )


def batch_vs_loop(b: int, n: int, rounds: int) -> str:
    g = torch.Generator().manual_seed(7)
    shift = 1.0 + torch.rand(b, 1, generator=g, dtype=torch.float64)
    noise = torch.randn(2, b, n, generator=g, dtype=torch.float64)
    x = torch.cat([noise[0], shift + noise[1]], 1)
    log_q = torch.stack([-0.5 * x**2, -0.5 * (x - shift) ** 2 + 0.3], 1)  # (B, 2, 2n)
    counts = [n, n]
    t, c, out = interleaved(
        {
            "batch": lambda: rlr(log_q, counts).log_z,
            "loop": lambda: torch.stack([rlr(lq, counts).log_z for lq in log_q]),
        },
        rounds,
    )
    return (
        f"{b} two-state problems x {2 * n} samples: batched {t['batch'] * 1e3:.1f} ms, one by one "
        f"{t['loop'] * 1e3:.1f} ms, speed-up {t['loop'] / t['batch']:.1f}x (CPU time {c['loop'] / c['batch']:.1f}x), "
        f"max |dlogZ| {float((out['batch'] - out['loop']).abs().max()):.1e}"
    )


def peak_rss_mib() -> float:
    """Peak resident memory of this program: VmHWM (reset at exec; ru_maxrss would also count the
    forked parent before exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def memory_child(k: int, n: int, chunk_size: int, in_memory: bool) -> None:
    """Run one large solve and print its peak resident memory (this program), wall time and log Z."""
    torch.set_num_threads(1)
    x, mu, offsets, s = umbrella(k, n, seed=k)
    counts = [n] * k
    t = time.perf_counter()
    if in_memory:
        est = rlr(umbrella_log_q(x, mu, offsets, s), counts)
    else:
        est = rlr(lambda a, b: umbrella_log_q(x[a:b], mu, offsets, s), counts, chunk_size=chunk_size)
    wall = time.perf_counter() - t
    print(json.dumps({"peak_mib": peak_rss_mib(), "wall_s": wall, "log_z": est.log_z.tolist(), "its": est.iterations}))


def memory(k: int, n: int, chunk_size: int, in_memory: bool) -> list[str]:
    lines = []
    small_x, mu, offsets, s = umbrella(k, n // 10, seed=k)
    whole = rlr(umbrella_log_q(small_x, mu, offsets, s), [n // 10] * k)
    chunked = rlr(lambda a, b: umbrella_log_q(small_x[a:b], mu, offsets, s), [n // 10] * k, chunk_size=chunk_size)
    gap = float((whole.log_z - chunked.log_z).abs().max())
    lines.append(f"chunked = in memory at K = {k} x {n // 10}: max |dlogZ| {gap:.1e}")
    # glibc's adaptive mmap threshold lets freed chunk-sized blocks pile up in the heap, so the peak
    # resident set also counts memory already freed; a fixed threshold shows what is live
    runs = [("chunked", {}), ("chunked", {"MALLOC_MMAP_THRESHOLD_": "65536"})]
    runs += [("in-memory", {})] if in_memory else []
    for mode, env in runs:
        cmd = [sys.executable, __file__, "--child", str(k), str(n), str(chunk_size), mode]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ | env).stdout
        res = json.loads(out.splitlines()[-1])
        allocator = ", MALLOC_MMAP_THRESHOLD_=65536" if env else ""
        lines.append(
            f"K = {k} states x {n} samples ({k * k * n / 1e6:.0f}M log densities, {k * k * n * 8 / 2**30:.2f} GiB "
            f"as float64), {mode}{allocator}: peak resident memory {res['peak_mib']:.0f} MiB, "
            f"{res['wall_s']:.1f} s, {res['its']} its"
        )
    if not in_memory:
        lines.append("(in-memory run skipped; --in-memory runs it, needing about 4 GiB)")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    p.add_argument("--in-memory", action="store_true", help="also run the K = 100 x 1e4 problem in memory")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        k, n, chunk, mode = args.child
        memory_child(int(k), int(n), int(chunk), mode == "in-memory")
        return
    torch.set_num_threads(1)
    mbar, note = pymbar_with_jax()
    print(f"torch {torch.__version__}, 1 thread; {note}; median of {args.rounds} interleaved rounds")
    for k, n in ((10, 2000), (50, 1000)):
        print(compare(k, n, args.rounds, mbar))
    print(batch_vs_loop(100, 1000, args.rounds))
    for line in memory(100, 10_000, 4096, args.in_memory):
        print(line)


if __name__ == "__main__":
    main()
