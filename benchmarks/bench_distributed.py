"""Weak scaling of walker training across processes (gloo, CPU), measured side by side in one run.

The GMM study's trainer (d = 50, Jarzynski, full-batch data) with N walkers and N data points per
process: time per iteration with P = 2 processes (2N walkers in all) over P = 1 (N walkers, the plain
single-process trainer).  Target <= 1.3 on 2 cores.  Each process runs one thread; the two sides
alternate in rounds and the median of the per-round ratios is reported, which cancels most of the
drift on a shared machine.  Also printed: the CPU time per iteration per process (what the work costs,
without the waiting that a loaded machine adds at every collective) and the time of the replicated
noise draw (every process draws the whole population's normals so that P processes reproduce one
process exactly).

Usage: python benchmarks/bench_distributed.py [--walkers 10000] [--rounds 3] [--iters 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch

from ebmlab.distributed import LOCAL, run_local
from ebmlab.experiments.gmm import PRESETS, build_trainer


def time_per_iter(coll, walkers_per_process: int, iters: int, distributed: bool) -> tuple[float, float]:
    """Wall and CPU seconds per training iteration on this process (after 3 warm-up iterations)."""
    coll = coll if distributed else LOCAL
    n = walkers_per_process * coll.world_size
    cfg = replace(PRESETS["paper"], n_walkers=n, n_data=n, iters=iters + 3)
    trainer, _, _ = build_trainer(cfg, "jarzynski", 0, coll)
    trainer.run(3, progress=False)
    coll.barrier()
    start, cpu = time.perf_counter(), time.process_time()
    trainer.run(iters + 3, progress=False)
    return (time.perf_counter() - start) / iters, (time.process_time() - cpu) / iters


def noise_draw_time(n: int, d: int, reps: int = 20) -> float:
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(reps):
        torch.randn(n, d, generator=g)
    return (time.perf_counter() - start) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walkers", type=int, default=10_000, help="walkers (and data points) per process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wall, cpu, t1s, t2s = [], [], [], []
    for r in range(args.rounds):
        ((w1, c1),) = run_local(time_per_iter, 1, args.walkers, args.iters, False)
        two = run_local(time_per_iter, 2, args.walkers, args.iters, True)
        w2, c2 = max(t[0] for t in two), max(t[1] for t in two)
        wall.append(w2 / w1)
        cpu.append(c2 / c1)
        t1s.append(w1)
        t2s.append(w2)
        print(
            f"round {r}: 1 process {w1 * 1e3:.1f} ms/iter ({c1 * 1e3:.1f} ms CPU), 2 processes {w2 * 1e3:.1f} "
            f"ms/iter ({c2 * 1e3:.1f} ms CPU each); ratio wall {w2 / w1:.3f}, CPU {c2 / c1:.3f}"
        )
    n, d = args.walkers, PRESETS["paper"].dim
    extra = noise_draw_time(2 * n, d) - noise_draw_time(n, d)
    print(
        f"weak scaling, {n} walkers per process, d = {d}, medians of {args.rounds} rounds "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    print(
        f"  time per iteration 2 processes / 1 process = {statistics.median(wall):.3f} (target <= 1.3); "
        f"CPU time per iteration per process, 2 / 1 = {statistics.median(cpu):.3f}"
    )
    print(
        f"  1 process {statistics.median(t1s) * 1e3:.1f} ms/iter, 2 processes {statistics.median(t2s) * 1e3:.1f} "
        f"ms/iter; the replicated noise draw adds {extra * 1e3:.1f} ms per iteration per process"
    )


if __name__ == "__main__":
    main()
