"""Core speed ratios, measured side by side in one run (targets from the core issue):

1. Jarzynski training iteration / PCD training iteration, same MLP energy (d = 32, two hidden layers
   of 128), 1024 walkers: target <= 1.10 without an estimator population, <= 1.35 with N/4 estimator
   walkers (the default: they give the unbiased log Z).
2. ULA step (proposal + energy/gradient + log-weight increment) / bare energy forward+backward on
   the same batch: target <= 1.15.

Timings alternate between the two sides in short blocks and report the median of the per-block
ratios, which cancels most of the drift on a shared machine.  Usage: python benchmarks/bench_core.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ebmlab.energies import MLPEnergy
from ebmlab.sampling import init_state, ula
from ebmlab.sampling.kernels import Move
from ebmlab.training import Trainer, negative_phase


def block_time(fn, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def paired_ratio(fa, fb, blocks: int, iters: int) -> tuple[float, float, float]:
    """Median over blocks of time(fa)/time(fb), with the median seconds per call of each."""
    fa(), fb()  # warm-up
    ta, tb = [], []
    for _ in range(blocks):
        ta.append(block_time(fa, iters))
        tb.append(block_time(fb, iters))
    return statistics.median(a / b for a, b in zip(ta, tb)), statistics.median(ta), statistics.median(tb)


def make_trainer(method: str, n_walkers: int, log_z_walkers: int = 0, seed: int = 0) -> Trainer:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    energy = MLPEnergy(32, hidden=(128, 128), confinement_std=1.0)
    data = torch.randn(4096, 32, generator=g)
    opt = torch.optim.Adam(energy.parameters(), lr=1e-4)
    phase = negative_phase(method, move=Move(step_size=0.01))
    return Trainer(
        energy,
        data,
        opt,
        phase,
        n_walkers=n_walkers,
        generator=g,
        data_batch=256,
        init_sampler=lambda n, gen: energy.sample_initial(n, gen),
        log_z0=energy.initial_log_z(),
        log_z_walkers=log_z_walkers,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--walkers", type=int, default=1024)
    p.add_argument("--blocks", type=int, default=15)
    p.add_argument("--iters", type=int, default=20)
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    pcd = make_trainer("pcd", args.walkers)
    for m, target in ((0, 1.10), (args.walkers // 4, 1.35)):
        jar = make_trainer("jarzynski", args.walkers, log_z_walkers=m)
        r, ta, tb = paired_ratio(jar.step, pcd.step, args.blocks, args.iters)
        print(
            f"training iteration, Jarzynski with {m} estimator walkers / PCD ({args.walkers} walkers): {r:.3f}  "
            f"({ta * 1e3:.2f} ms vs {tb * 1e3:.2f} ms)  target <= {target:.2f}"
        )

    energy = MLPEnergy(32, hidden=(128, 128))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.walkers, 32, generator=g)
    state = init_state(energy, x)

    def ula_step():
        ula(state, energy, 0.01, g)

    def bare():
        xg = x.detach().requires_grad_(True)
        torch.autograd.grad(energy(xg).sum(), xg)

    r, ta, tb = paired_ratio(ula_step, bare, args.blocks, args.iters * 5)
    print(
        f"ULA step / bare energy forward+backward ({args.walkers} walkers): {r:.3f}  "
        f"({ta * 1e3:.3f} ms vs {tb * 1e3:.3f} ms)  target <= 1.15"
    )


if __name__ == "__main__":
    main()
