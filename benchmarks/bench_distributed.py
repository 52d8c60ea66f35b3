"""Weak scaling of walker training across processes (gloo, CPU), measured side by side in one run.

The GMM study's trainer (d = 50, Jarzynski, full-batch data) with N walkers and N data points per
process.  Each round times, one after the other: one process alone (N walkers); two independent
single-process runs side by side (the machine's own limit: two cores, memory bandwidth, other jobs);
P = 2 processes of one distributed run (2N walkers) with the noise replicated (the exact 1-process
reproduction) and with per-rank noise streams.  Reported (medians of the per-round ratios): each
distributed run over the two independent runs (target <= 1.15) and over one process alone, and the
independent pair over one alone.  Each process runs one thread.  Also printed: CPU time per iteration
per process (the work, without the waiting a loaded machine adds at every collective) and the cost of
the replicated noise draw.

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


def time_per_iter(coll, walkers_per_process: int, iters: int, distributed: bool, noise: str) -> tuple[float, float]:
    """Wall and CPU seconds per training iteration on this process (after 3 warm-up iterations)."""
    coll = coll if distributed else LOCAL
    n = walkers_per_process * coll.world_size
    cfg = replace(PRESETS["paper"], n_walkers=n, n_data=n, iters=iters + 3, noise=noise)
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


RUNS = {  # name: (processes, distributed, noise)
    "one alone": (1, False, "replicated"),
    "two independent": (2, False, "replicated"),
    "torchrun-2 replicated noise": (2, True, "replicated"),
    "torchrun-2 per-rank noise": (2, True, "per-rank"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--walkers", type=int, default=10_000, help="walkers (and data points) per process")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wall: dict[str, list[float]] = {name: [] for name in RUNS}
    cpu: dict[str, list[float]] = {name: [] for name in RUNS}
    for r in range(args.rounds):
        for name, (procs, distributed, noise) in RUNS.items():
            res = run_local(time_per_iter, procs, args.walkers, args.iters, distributed, noise)
            wall[name].append(max(t[0] for t in res))  # the slower process sets the pace
            cpu[name].append(max(t[1] for t in res))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms/iter" for k, v in wall.items()))
    med = lambda d, a, b: statistics.median(x / y for x, y in zip(d[a], d[b]))
    n, d = args.walkers, PRESETS["paper"].dim
    print(
        f"weak scaling, {n} walkers and data per process, d = {d}, medians of {args.rounds} rounds "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):"
    )
    for name in RUNS:
        print(
            f"  {name:<28} {statistics.median(wall[name]) * 1e3:7.1f} ms/iter wall, "
            f"{statistics.median(cpu[name]) * 1e3:7.1f} ms CPU per process"
        )
    print(f"  two independent / one alone: {med(wall, 'two independent', 'one alone'):.3f} (the machine's limit)")
    for name in ("torchrun-2 replicated noise", "torchrun-2 per-rank noise"):
        print(
            f"  {name} / two independent: {med(wall, name, 'two independent'):.3f} (target <= 1.15); "
            f"/ one alone {med(wall, name, 'one alone'):.3f}; CPU time / two independent "
            f"{med(cpu, name, 'two independent'):.3f}"
        )
    extra = noise_draw_time(2 * n, d) - noise_draw_time(n, d)
    print(f"  the replicated noise draw adds {extra * 1e3:.1f} ms per iteration per process (per-rank: none)")


if __name__ == "__main__":
    main()
