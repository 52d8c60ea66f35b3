"""Reductions over a population split across processes: one interface, a local and a distributed backend.

A :class:`Collective` gives the walker-set functions (weights, ESS, log Z, resampling), the trainer and
the RLR solver the few global operations they need.  :data:`LOCAL` (one process) implements them with
the plain torch calls the single-process code always used, so single-process results are unchanged
bit for bit; :class:`ProcessGroupCollective` implements them with ``torch.distributed`` collectives
(gloo on CPU, NCCL on GPUs) over a process group, typically one launched by ``torchrun``.

Layout: a population of N items (walkers, samples) is split into P contiguous shards, rank r holding
rows ``[r * N / P, (r + 1) * N / P)`` (``torch.tensor_split`` when N is not a multiple of P).  Every
process holds the same replicated values (parameters, generator state, data) and its own shard.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

T = TypeVar("T")

NOISE_MODES = ("replicated", "per-rank")
_MASK64 = (1 << 64) - 1


def stream_seed(base: int, step: int, rank: int) -> int:
    """A 63-bit seed for the per-rank noise stream of (base seed, iteration, rank): the SplitMix64
    finaliser of a linear mix, so nearby arguments give unrelated streams (counter-based: nothing to
    store, and a resumed run draws what an uninterrupted one would)."""
    z = (base * 0x9E3779B97F4A7C15 + (step + 1) * 0xBF58476D1CE4E5B9 + (rank + 1) * 0x94D049BB133111EB) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) >> 1


@dataclass(frozen=True)
class NoiseRows:
    """This process's rows of a noise draw made for ``total`` walkers: ``rows`` (an index tensor (M,),
    or a slice for a contiguous block) select them from the draw.

    A process holding some of the walkers draws the whole (total, *event) noise from the shared
    generator and keeps its rows, so each walker gets exactly the noise one process would give it.
    """

    total: int
    rows: Tensor | slice


class Collective:
    """One process: every reduction is the identity (the base class is the local backend)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and shows progress bars (rank 0)."""
        return self.rank == 0

    # -- elementwise reductions of replicated-shape tensors ----------------------------------------
    def sum(self, t: Tensor) -> Tensor:
        """Elementwise sum over processes of a tensor of the same shape on every process."""
        return t

    def max(self, t: Tensor) -> Tensor:
        """Elementwise maximum over processes."""
        return t

    def sum_(self, tensors: Sequence[Tensor]) -> None:
        """In-place elementwise sum over processes of a list of tensors (e.g. parameter gradients)."""

    # -- reductions over the sharded leading dimension ---------------------------------------------
    def numel(self, t: Tensor) -> int:
        """Global length of the sharded dimension 0 of a population split in equal shards."""
        return t.shape[0]

    def logsumexp(self, a: Tensor, dim: int = 0) -> Tensor:
        """log sum exp over the sharded dimension ``dim`` (all shards), float dtype of ``a``."""
        return torch.logsumexp(a, dim)

    def softmax(self, a: Tensor) -> Tensor:
        """softmax over the sharded dimension 0 (normalised over all shards)."""
        return torch.softmax(a, 0)

    def gather(self, t: Tensor) -> Tensor:
        """Concatenate the equal-sized shards along dimension 0, on every process."""
        return t

    def split(self, t: Tensor) -> Tensor:
        """This process's contiguous part of a replicated tensor (rows along dimension 0)."""
        return t

    def take(self, t: Tensor, idx: Tensor) -> Tensor:
        """Rows ``idx`` (M,) of the sharded population (global indices, the same on every process),
        returned for this process's share of the M slots (``split`` of the slots)."""
        return t[idx]

    def select(self, idx: Tensor, n_local: int) -> tuple[Tensor, NoiseRows | None]:
        """For global walker indices ``idx`` (K,), the same on every process, with ``n_local`` walkers
        per process: the local indices of the ones this process holds (in the order of ``idx``) and
        their rows in a K-row noise draw."""
        return idx, None

    def population_rows(self, n_local: int) -> NoiseRows | None:
        """Rows of this process's walkers in a noise draw for the whole population."""
        return None

    def barrier(self) -> None:
        """Wait for every process."""

    def check_replicated(self, values: Tensor, what: str) -> None:
        """Raise ValueError unless the float64 vector ``values`` is equal on every process."""

    def agree(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` (e.g. input validation); a ValueError on any process is raised on every one."""
        return fn()


LOCAL = Collective()


class ProcessGroupCollective(Collective):
    """Collectives over a ``torch.distributed`` process group (default: the world).

    device: where reduction buffers live (CPU for gloo, the local GPU for NCCL); defaults to
    the current CUDA device for NCCL, else the CPU.
    """

    def __init__(self, group: dist.ProcessGroup | None = None, device: torch.device | str | None = None):
        if not dist.is_initialized():
            raise ValueError(
                "torch.distributed is not initialised: call init_from_env() or "
                "torch.distributed.init_process_group first (e.g. under torchrun)"
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        if device is None:
            nccl = dist.get_backend(group) == "nccl"
            device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
        self.device = torch.device(device)

    def _reduce(self, t: Tensor, op: dist.ReduceOp.RedOpType) -> Tensor:
        out = t.detach().to(self.device, copy=True)
        dist.all_reduce(out, op=op, group=self.group)
        return out.to(t.device)

    def sum(self, t: Tensor) -> Tensor:
        return self._reduce(t, dist.ReduceOp.SUM)

    def max(self, t: Tensor) -> Tensor:
        return self._reduce(t, dist.ReduceOp.MAX)

    def sum_(self, tensors: Sequence[Tensor]) -> None:
        by_dtype: dict[torch.dtype, list[Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():  # one all-reduce per dtype
            flat = self.sum(torch.cat([t.reshape(-1) for t in group]))
            for t, part in zip(group, flat.split([t.numel() for t in group])):
                t.copy_(part.view_as(t))

    def numel(self, t: Tensor) -> int:
        return t.shape[0] * self.world_size  # equal shards: no communication

    def logsumexp(self, a: Tensor, dim: int = 0) -> Tensor:
        """One all_gather of the per-process log-sum-exps (each max-shifted locally), combined stably."""
        parts = self.gather(torch.logsumexp(a, dim).unsqueeze(0))  # (P, ...); -inf for an empty shard
        return torch.logsumexp(parts, 0)

    def softmax(self, a: Tensor) -> Tensor:
        return torch.exp(a - self.logsumexp(a, 0))

    def gather(self, t: Tensor) -> Tensor:
        parts = [torch.empty_like(t, device=self.device) for _ in range(self.world_size)]
        dist.all_gather(parts, t.detach().to(self.device).contiguous(), group=self.group)
        return torch.cat(parts).to(t.device)

    def split(self, t: Tensor) -> Tensor:
        return torch.tensor_split(t, self.world_size)[self.rank]

    def take(self, t: Tensor, idx: Tensor) -> Tensor:
        """all_to_all: each process sends the rows others need and receives its slots' rows."""
        n_local, p = t.shape[0], self.world_size
        owner = torch.div(idx, n_local, rounding_mode="floor")  # process holding each source row
        slots = torch.tensor_split(torch.arange(idx.numel(), device=idx.device), p)
        send_rows, send_counts = [], []
        for q in range(p):  # what process q's slots need from me, in slot order
            need = idx[slots[q]]
            mine = owner[slots[q]] == self.rank
            send_rows.append(need[mine] - self.rank * n_local)
            send_counts.append(int(mine.sum()))
        my_owner = owner[slots[self.rank]]
        recv_counts = [int((my_owner == s).sum()) for s in range(p)]
        order = torch.argsort(my_owner, stable=True)  # my slots grouped by source process
        send = t[torch.cat(send_rows)].to(self.device).contiguous()
        recv = torch.empty((sum(recv_counts), *t.shape[1:]), dtype=t.dtype, device=self.device)
        dist.all_to_all_single(recv, send, recv_counts, send_counts, group=self.group)
        out = torch.empty_like(recv)
        out[order.to(self.device)] = recv
        return out.to(t.device)

    def select(self, idx: Tensor, n_local: int) -> tuple[Tensor, NoiseRows | None]:
        lo = self.rank * n_local
        pos = ((idx >= lo) & (idx < lo + n_local)).nonzero().squeeze(1)
        return idx[pos] - lo, NoiseRows(idx.numel(), pos.to(idx.device))

    def population_rows(self, n_local: int) -> NoiseRows | None:
        lo = self.rank * n_local
        return NoiseRows(n_local * self.world_size, slice(lo, lo + n_local))

    def barrier(self) -> None:
        dist.barrier(group=self.group)

    def check_replicated(self, values: Tensor, what: str) -> None:
        v = values.detach().double().reshape(-1)
        if not torch.equal(self.max(v), -self.max(-v)):
            raise ValueError(
                f"{what} differ between processes: every process must build the same model, "
                "data and generator (same seed); only the walkers are split"
            )

    def agree(self, fn: Callable[[], T]) -> T:
        try:
            out, error = fn(), None
        except ValueError as exc:
            out, error = None, exc
        if float(self.max(torch.tensor(float(error is not None)))) > 0:
            raise error or ValueError("another process rejected its inputs (see its error message)")
        return cast(T, out)  # fn() returned it: no process raised


def init_from_env(backend: str | None = None) -> Collective:
    """The collective for this launch: a :class:`ProcessGroupCollective` over the world when started by
    ``torchrun`` (``WORLD_SIZE`` > 1), else :data:`LOCAL`.  Initialises the default group if needed,
    with ``backend`` (default gloo: the ebmlab experiments keep their tensors on the CPU; pass "nccl"
    for tensors on GPUs, one per process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return LOCAL
    if not dist.is_initialized():
        dist.init_process_group(backend or "gloo")
    return ProcessGroupCollective()


def free_port() -> int:
    """A TCP port on localhost that is free now (for a local rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, fn: Callable[..., Any], world_size: int, port: int, out: str, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.save(fn(ProcessGroupCollective(), *args), os.path.join(out, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_local(fn: Callable[..., Any], world_size: int, *args: Any) -> list[Any]:
    """Run ``fn(collective, *args)`` in ``world_size`` fresh CPU processes (gloo, one thread each) and
    return the results by rank.  ``fn`` must be importable (a module-level function); for tests and
    benchmarks on one machine."""
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(
            _spawned, args=(fn, world_size, free_port(), out, args), nprocs=world_size, start_method="fork"
        )
        return [torch.load(os.path.join(out, f"{r}.pt"), weights_only=False) for r in range(world_size)]
