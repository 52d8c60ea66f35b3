"""Log densities of K states at N pooled samples, held in memory or evaluated chunk by chunk.

Samples are pooled in the order of the state they were drawn from (``counts[k]`` of state k).  A
source is either a tensor ``(*batch, K, N)`` or a callable ``log_q(start, stop)`` returning the
``(*batch, K, stop - start)`` block of samples ``start .. stop - 1``; the callable is evaluated one
chunk at a time on every pass over the samples, so K x N never has to fit in memory (it must return
the same values on every call).  The first pass (:func:`scan`) validates every entry and gathers what
the solvers need before they start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from ..distributed import Collective
from ..errors import check_int
from .validation import as_counts, as_log_density

ChunkFn = Callable[[int, int], Tensor]
"""Pooled log densities given in chunks: ``fn(start, stop)`` returns the (*batch, K, stop - start) block of
samples ``start .. stop - 1``, in nats."""
DEFAULT_CHUNK = 4096


@dataclass(frozen=True)
class Pooled:
    """Validated pooled log densities: ``source`` is a float64 (B, K, N) tensor or a :data:`ChunkFn`.

    counts: (K,) this process's samples per state; batch_shape: the caller's leading shape (B items
    flattened); chunk_size: samples per chunk (N for an in-memory tensor processed whole).
    """

    source: Tensor | ChunkFn
    counts: Tensor
    batch_shape: torch.Size
    chunk_size: int

    @property
    def n_states(self) -> int:
        return self.counts.numel()

    @cached_property
    def n_samples(self) -> int:
        return int(self.counts.sum())

    @cached_property
    def _counts(self) -> list[int]:
        return self.counts.tolist()

    @property
    def n_batch(self) -> int:
        return math.prod(self.batch_shape)

    @property
    def in_memory(self) -> bool:
        """One whole tensor, processed as a single chunk (its derived arrays may be cached)."""
        return isinstance(self.source, Tensor) and self.chunk_size >= self.n_samples

    def bounds(self) -> Iterator[tuple[int, int]]:
        n = self.n_samples
        for start in range(0, n, self.chunk_size):
            yield start, min(start + self.chunk_size, n)

    def chunk(self, start: int, stop: int) -> Tensor:
        """(B, K, stop - start) float64 log densities of samples start..stop-1."""
        if isinstance(self.source, Tensor):
            return self.source[..., start:stop]
        return _reshaped(self.source(start, stop), self, start, stop)

    def chunks(self) -> Iterator[tuple[int, Tensor]]:
        """(start, (B, K, c)) over all samples, in order."""
        for start, stop in self.bounds():
            yield start, self.chunk(start, stop)

    def pieces(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """(state, lo, hi): the samples of each state within [start, stop), relative to ``start``."""
        out, lo = [], 0
        for state, c in enumerate(self._counts):
            a, b = max(lo, start), min(lo + c, stop)
            if a < b:
                out.append((state, a - start, b - start))
            lo += c
        return out

    def origin(self) -> Tensor:
        """(N,) the state each pooled sample was drawn from."""
        return torch.repeat_interleave(torch.arange(self.n_states), self.counts.cpu())


def pooled(log_q: Tensor | ChunkFn, counts, *, chunk_size: int | None = None) -> Pooled:
    """Validate a pooled source.  A tensor is checked whole here; a callable chunk by chunk in :func:`scan`."""
    if chunk_size is not None:
        check_int("chunk_size", chunk_size, 1)
    if callable(log_q) and not isinstance(log_q, Tensor):
        c = as_counts(counts, None, None)
        probe = torch.as_tensor(log_q(0, min(1, int(c.sum()))))
        if probe.dim() < 2 or probe.shape[-2] != c.numel():
            raise ValueError(
                f"log_q(start, stop) must return (*batch, K, stop - start) with K = {c.numel()} states "
                f"(one per count); got shape {tuple(probe.shape)}"
            )
        return Pooled(log_q, c.to(probe.device), probe.shape[:-2], chunk_size or DEFAULT_CHUNK)
    lq = as_log_density(log_q, "log_q")
    if lq.dim() < 2:
        raise ValueError(f"log_q must have shape (*batch, K, N), got {tuple(lq.shape)}")
    c = as_counts(counts, lq.shape[-2], lq.shape[-1]).to(lq.device)
    if lq.shape[-1] == 0:
        raise ValueError("no state has samples: at least one state must be sampled")
    flat = lq.reshape(math.prod(lq.shape[:-2]), *lq.shape[-2:])
    return Pooled(flat, c, lq.shape[:-2], chunk_size or max(lq.shape[-1], 1))


def _reshaped(block: Tensor, p: Pooled, start: int, stop: int) -> Tensor:
    block = torch.as_tensor(block)
    want = (*p.batch_shape, p.n_states, stop - start)
    if tuple(block.shape) != want:
        raise ValueError(f"log_q({start}, {stop}) returned shape {tuple(block.shape)}, expected {want}")
    return block.to(torch.float64).reshape(p.n_batch, p.n_states, stop - start)


@dataclass(frozen=True)
class Scan:
    """What one validating pass over the samples finds (local to this process).

    own_lse: (B, K) log sum over the samples of state k of h_k (-inf for unsampled states).
    seen: (B, K) state k has positive density at some sample.
    link: (B, K, K) link[b, k, l]: state k has positive density at some sample drawn from state l.
    zero_own: (sample index, batch index) of a sample with zero density under its own state, or None.
    """

    own_lse: Tensor
    seen: Tensor
    link: Tensor
    zero_own: tuple[int, int] | None


def scan(p: Pooled) -> Scan:
    """One pass: validate every chunk (callable sources) and collect :class:`Scan`."""
    k, b = p.n_states, p.n_batch
    dev = p.counts.device
    own_lse = torch.full((b, k), -math.inf, dtype=torch.float64, device=dev)
    seen = torch.zeros(b, k, dtype=torch.bool, device=dev)
    link = torch.zeros(b, k, k, dtype=torch.bool, device=dev)
    zero_own = None
    for start, stop in p.bounds():
        block = p.chunk(start, stop)
        if not isinstance(p.source, Tensor):
            as_log_density(block, f"log_q({start}, {stop})")
        pieces = p.pieces(start, stop)
        for state, lo, hi in pieces:
            own = torch.logsumexp(block[:, state, lo:hi], -1)
            own_lse[:, state] = torch.logaddexp(own_lse[:, state], own)
        if bool(block.amin() > -math.inf):  # every density positive everywhere: nothing else to find
            seen[:] = True
            link[:, :, [state for state, _, _ in pieces]] = True
            continue
        finite = block > -math.inf
        seen |= finite.any(-1)
        for state, lo, hi in pieces:
            link[:, :, state] |= finite[:, :, lo:hi].any(-1)
            bad = ~finite[:, state, lo:hi]
            if zero_own is None and bool(bad.any()):
                bi, ni = bad.nonzero()[0].tolist()
                zero_own = (start + lo + ni, bi)
    return Scan(own_lse, seen, link, zero_own)


def reduce_scan(s: Scan, coll: Collective) -> Scan:
    """Combine the scans of all processes (samples split across them)."""
    if coll.world_size == 1:
        return s
    as_any = lambda t: coll.max(t.double()) > 0
    zero = coll.max(torch.tensor(0.0 if s.zero_own is None else 1.0))
    zero_own = s.zero_own if s.zero_own is not None else ((-1, -1) if float(zero) > 0 else None)
    return Scan(coll.logsumexp(s.own_lse.unsqueeze(-1), -1), as_any(s.seen), as_any(s.link), zero_own)
