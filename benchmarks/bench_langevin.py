"""The Langevin step against a bare energy forward+backward and against its peers, side by side in one run.

Same MLP energy (d = 32 -> 128 -> 128 -> 1, SiLU, float32, plus a fixed confinement |x|^2 / (2 c^2),
c = 2, so that walkers stay where the network is evaluated at normal floating-point speed: without it
they drift away and SiLU underflows to subnormal numbers, which slows every contender that moves
and not the bare evaluation at fixed points) and walkers (1024) everywhere; each contender
runs blocks of ``--steps`` steps carrying its own state, the contenders alternate within every round and
the median over rounds of each per-round ratio is reported (this cancels most of the drift of a shared
machine).  Printed, with the issue's targets:

- eager, at each of ``--threads``: weighted ULA step (move + energy/gradient + exact increment) / bare
  forward+backward (<= 1.10); unweighted ULA step (PCD/CD) / bare (<= 1.05); the noise draw alone / bare
  (what no ULA can avoid); a hand-written ULA loop / bare, and the unweighted step over it; weighted
  ULA / torchebm's ``LangevinDynamics`` step (<= 0.85; ``pip install torchebm``, else skipped);
- compiled, one thread: ebmlab's weighted step with ``compile=True`` / BlackJAX's jitted MALA step on the
  same MLP (weights copied) and walkers (<= 1.0; ``pip install jax blackjax``, else skipped); also the
  compiled step / eager bare forward+backward, and JAX's jitted bare forward+backward.

Usage: python benchmarks/bench_langevin.py [--rounds 9] [--steps 20] [--threads 1,2] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import torch

from ebmlab.energies import MLPEnergy
from ebmlab.sampling import init_state, ula
from ebmlab.sampling.compiled import compile_available
from ebmlab.sampling.langevin import draw_noise

H = 0.01  # step size: the move is y = x - h grad U(x) + sqrt(2h) xi
CONFINEMENT = 2.0


Times = dict[str, list[float]]


def interleaved(blocks: dict[str, Callable[[], None]], rounds: int, sync: Callable[[], None]) -> tuple[Times, Times]:
    """Wall and CPU seconds (this process) per block of each contender, round by round, after one
    warm-up block each.  On a loaded machine the CPU time is the steadier measure of the work."""
    wall: Times = {name: [] for name in blocks}
    cpu: Times = {name: [] for name in blocks}
    for fn in blocks.values():
        fn()
    sync()
    for _ in range(rounds):
        for name, fn in blocks.items():
            start, c = time.perf_counter(), time.process_time()
            fn()
            sync()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - c)
    return wall, cpu


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def row(times: tuple[Times, Times], steps: int, label: str, a: str, b: str, target: str = "") -> str:
    """One printed ratio: the median ratio of wall and of CPU times, both CPU times per step, the target."""
    wall, cpu = times
    goal = f"; target {target}" if target else ""
    both = f"CPU {ms_per_step(cpu, a, steps)} vs {ms_per_step(cpu, b, steps)}"
    return f"  {label:<46} wall {ratio(wall, a, b):.3f}  CPU {ratio(cpu, a, b):.3f}  ({both}{goal})"


def ms_per_step(times: dict[str, list[float]], name: str, steps: int) -> str:
    return f"{statistics.median(times[name]) / steps * 1e3:.3f} ms"


def torch_contenders(energy, x: torch.Tensor, steps: int, compiled: bool) -> dict[str, Callable[[], None]]:
    """Blocks of ``steps`` steps of the bare forward+backward, ebmlab's ULA (weighted, unweighted, or
    compiled) and the noise draw alone."""
    g = torch.Generator(x.device).manual_seed(0)
    states = {"weighted": init_state(energy, x), "unweighted": init_state(energy, x)}

    def bare() -> None:
        for _ in range(steps):
            xg = x.detach().requires_grad_(True)
            torch.autograd.grad(energy(xg).sum(), xg)

    def chain(name: str, **kw) -> Callable[[], None]:
        def run() -> None:
            for _ in range(steps):
                states[name], _ = ula(states[name], energy, H, g, **kw)

        return run

    def noise() -> None:
        for _ in range(steps):
            draw_noise(x, g)

    plain_state = {"x": x.clone(), "grad": states["weighted"].grad.clone()}

    def plain() -> None:  # the hand-written loop: move, then energy and input gradient, no weights
        sigma = math.sqrt(2 * H)
        for _ in range(steps):
            y = plain_state["x"] - H * plain_state["grad"] + sigma * torch.randn(x.shape, generator=g, device=x.device)
            y.requires_grad_(True)
            (grad,) = torch.autograd.grad(energy(y).sum(), y)
            plain_state["x"], plain_state["grad"] = y.detach(), grad

    if compiled:
        states["compiled"] = init_state(energy, x)
        return {"bare": bare, "compiled": chain("compiled", compile=True)}
    return {
        "bare": bare,
        "plain": plain,
        "weighted": chain("weighted"),
        "unweighted": chain("unweighted", weighted=False),
        "noise": noise,
    }


def torchebm_contender(energy, x: torch.Tensor, steps: int) -> Callable[[], None] | None:
    try:
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics
    except ImportError:
        return None

    class Wrapped(BaseModel):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return self.net(z)

    sampler = LangevinDynamics(Wrapped(energy), step_size=H, noise_scale=1.0, device=x.device)
    g = torch.Generator(x.device).manual_seed(0)
    state = {"x": x.clone()}

    def run() -> None:
        state["x"] = sampler.sample(x=state["x"], n_steps=steps, generator=g)

    return run


def jax_contenders(energy: MLPEnergy, x: torch.Tensor, steps: int) -> tuple[dict[str, Callable[[], None]], str]:
    """BlackJAX's jitted MALA step (vmapped over the walkers) and JAX's jitted bare forward+backward."""
    try:
        import blackjax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}, "jax/blackjax not installed (pip install jax blackjax): the compiled peer is skipped"
    layers = [m for m in energy.net if isinstance(m, torch.nn.Linear)]
    params = [(jnp.asarray(m.weight.detach().numpy().T), jnp.asarray(m.bias.detach().numpy())) for m in layers]

    def u_one(x):
        z = x
        for w, b in params[:-1]:
            z = jax.nn.silu(z @ w + b)
        w, b = params[-1]
        return (z @ w + b)[0] + 0.5 * jnp.sum(x * x) / CONFINEMENT**2

    kernel = blackjax.mala(lambda z: -u_one(z), H)
    step = jax.jit(jax.vmap(kernel.step))
    grad_all = jax.jit(jax.vmap(jax.value_and_grad(u_one)))
    xs = jnp.asarray(x.numpy())
    carry = {"state": jax.vmap(kernel.init)(xs), "key": jax.random.key(0)}

    def mala_block() -> None:
        for _ in range(steps):
            carry["key"], sub = jax.random.split(carry["key"])
            carry["state"], _ = step(jax.random.split(sub, xs.shape[0]), carry["state"])
        jax.block_until_ready(carry["state"])

    def bare_block() -> None:
        out = None
        for _ in range(steps):
            out = grad_all(xs)
        jax.block_until_ready(out)

    return {
        "blackjax_mala": mala_block,
        "jax_bare": bare_block,
    }, f"jax {jax.__version__}, blackjax {blackjax.__version__}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--walkers", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--steps", type=int, default=20, help="steps per timed block")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts for the eager ratios")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the JAX peer runs on the CPU only)")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled comparison")
    args = p.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else lambda: None
    torch.manual_seed(0)
    energy = MLPEnergy(32, hidden=(128, 128), confinement_std=CONFINEMENT, zero_init_output=False).to(dev)
    x = torch.randn(args.walkers, 32, generator=torch.Generator().manual_seed(1)).to(dev)
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, device {dev}, {args.walkers} walkers, MLP 32-128-128-1 + confinement, h = {H}")
    print(f"load average {load:.1f} on {os.cpu_count()} cores; medians of {args.rounds} interleaved rounds")
    n = args.steps
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        blocks = torch_contenders(energy, x, n, compiled=False)
        peer = torchebm_contender(energy, x, n)
        if peer is not None:
            blocks["torchebm"] = peer
        t = interleaved(blocks, args.rounds, sync)
        print(f"eager, {threads} thread(s): bare forward+backward {ms_per_step(t[0], 'bare', n)} wall per step")
        print(row(t, n, "weighted ULA / bare", "weighted", "bare", "<= 1.10"))
        print(row(t, n, "unweighted ULA / bare", "unweighted", "bare", "<= 1.05"))
        print(row(t, n, "noise draw alone / bare", "noise", "bare"))
        print(row(t, n, "hand-written plain ULA loop / bare", "plain", "bare"))
        print(row(t, n, "unweighted ULA / hand-written loop", "unweighted", "plain"))
        if peer is None:
            print("  torchebm not installed (pip install torchebm): its ratio is skipped")
        else:
            print(row(t, n, "weighted ULA / torchebm ULA", "weighted", "torchebm", "<= 0.85"))
    if args.no_compile:
        return
    if not compile_available():
        print("compiled: torch.compile cannot build graphs here (no C++ compiler?): skipped")
        return
    torch.set_num_threads(1)
    blocks = torch_contenders(energy, x, n, compiled=True)
    peers, note = jax_contenders(energy.cpu(), x.cpu(), n) if dev.type == "cpu" else ({}, "JAX peer: CPU only")
    energy.to(dev)
    t = interleaved(blocks | peers, args.rounds, sync)
    print(f"compiled, 1 thread ({note}):")
    print(row(t, n, "ebmlab compiled weighted step / eager bare", "compiled", "bare"))
    if peers:
        print(row(t, n, "ebmlab compiled / BlackJAX jitted MALA", "compiled", "blackjax_mala", "<= 1.0"))
        print(row(t, n, "JAX jitted bare forward+backward / eager bare", "jax_bare", "bare"))
    print(f"(sigma = sqrt(2h) = {math.sqrt(2 * H):.4f}; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
