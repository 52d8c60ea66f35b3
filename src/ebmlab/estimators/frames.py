"""The pooled samples as the solver sees them: the mixture of the sampled states, and each chunk in
the frame of a reference point f_ref, E_kn = exp(log h_k(x_n) + log c_k + f_ref_k - top_n - m_n)
(top_n the log density of x_n under its own state, removed exactly first; m_n the largest remaining
exponent, so E <= 1), stored as ``rest`` (E with each sample's own-state entry zeroed) and ``own`` (that entry):
sums over the other states then never cancel.  In memory the one frame is kept; with chunked samples
it is rebuilt chunk by chunk on each pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from ..distributed import Collective
from .pooled import Pooled


@dataclass(frozen=True)
class Mixture:
    """The problem as the solver sees it.

    mix: (M,) indices of the mixture (sampled) states in the pooled source; log_c: (M,) log mixture
    weights; free: (M,) bool, the states solved for; omega: (N,) weights of this process's samples
    (None: all 1); coll: reduces sums over samples split across processes.
    """

    pooled: Pooled
    mix: Tensor
    log_c: Tensor
    free: Tensor
    omega: Tensor | None
    coll: Collective

    @cached_property
    def state_pos(self) -> list[int]:
        """Position of each state in the mixture (-1 for states outside it)."""
        pos = [-1] * self.pooled.n_states
        for j, k in enumerate(self.mix.tolist()):
            pos[k] = j
        return pos

    @cached_property
    def own_pos(self) -> Tensor:
        """(N,) mixture position of the state each sample was drawn from."""
        pos = torch.tensor(self.state_pos, dtype=torch.long)
        return pos[self.pooled.origin()].to(self.mix.device)


@dataclass(frozen=True)
class Shift:
    """One chunk of c samples in the frame of a reference point: e (B, M, c) = E; rest = E with each
    sample's own-state entry zeroed; own (B, c) = that entry; pos (B, c) its mixture position; pieces:
    (position, lo, hi) of each state's run of samples in the chunk; top, m (B, c):
    log sum_k c_k exp(f_k) h_k(x_n) = top_n + m_n + log S_n."""

    start: int
    block: Tensor
    e: Tensor
    rest: Tensor
    own: Tensor
    pos: Tensor
    pieces: tuple[tuple[int, int, int], ...]
    piece_pos: Tensor
    top: Tensor
    m: Tensor

    def segment_sum(self, x: Tensor, out: Tensor) -> None:
        """out[..., k] += sum of x (..., c) over the chunk's samples of mixture state k."""
        sums = torch.stack([x[..., lo:hi].sum(-1) for _, lo, hi in self.pieces], -1)
        out.index_add_(out.dim() - 1, self.piece_pos, sums)

    def gram(self, a: Tensor) -> Tensor:
        """sum_n a_n E_kn E_ln (B, M, M) for weights a (B, c)."""
        return torch.bmm(self.e * a.unsqueeze(1), self.e.transpose(1, 2))

    def responsibilities(self, s: Tensor, big: Tensor) -> Tensor:
        """V_nk = s_k E_kn / S_n (B, M, c) at the point with exp(delta) = s and mixture S (B, c)."""
        return self.e * (s.unsqueeze(-1) / big.unsqueeze(1))


@dataclass(frozen=True)
class Frame:
    """A reference point f_ref (B, M) and, for in-memory samples, its one :class:`Shift`."""

    f_ref: Tensor
    cache: Shift | None


def _shift(mx: Mixture, f_ref: Tensor, start: int, block: Tensor) -> Shift:
    """The :class:`Shift` of a raw chunk (B, K, c).  Each sample's log density under its own state is
    removed first (exactly, by Sterbenz's lemma, when an offset dominates), so offsets cost no precision."""
    raw = block if mx.mix.numel() == block.shape[1] else block[:, mx.mix]
    pos = mx.own_pos[start : start + raw.shape[-1]].expand(raw.shape[0], -1)
    top = raw.gather(1, pos.unsqueeze(1)).squeeze(1)  # finite: positive density under the own state
    a = (raw - top.unsqueeze(1)).add_((mx.log_c + f_ref).unsqueeze(-1))
    m = a.amax(1)
    # terms below e^-700 of the largest at their sample stay at e^-700 (1e-290 of every sum they enter)
    # instead of underflowing: exp is several times slower in its underflow range
    e = a.sub_(m.unsqueeze(1)).clamp_(min=-700.0).exp_()
    own = e.gather(1, pos.unsqueeze(1)).squeeze(1)
    rest = e.scatter(1, pos.unsqueeze(1), 0.0)
    pieces = tuple((mx.state_pos[k], lo, hi) for k, lo, hi in mx.pooled.pieces(start, start + e.shape[-1]))
    piece_pos = torch.tensor([j for j, _, _ in pieces], dtype=torch.long, device=e.device)
    return Shift(start, block, e, rest, own, pos, pieces, piece_pos, top, m)


def shifted(mx: Mixture, frame: Frame) -> Iterator[Shift]:
    """The chunks of the samples in ``frame``."""
    if frame.cache is not None:
        yield frame.cache
        return
    for start, block in mx.pooled.chunks():
        yield _shift(mx, frame.f_ref, start, block)


def make_frame(mx: Mixture, f_ref: Tensor) -> Frame:
    p = mx.pooled
    return Frame(f_ref, _shift(mx, f_ref, 0, p.chunk(0, p.n_samples)) if p.in_memory else None)


def bmv(a: Tensor, v: Tensor) -> Tensor:
    """(B, M, c) x (B, c) -> (B, M); for many problems a fused multiply-sum beats B tiny products."""
    if a.shape[0] > 1:
        return (a * v.unsqueeze(1)).sum(-1)
    return torch.bmm(a, v.unsqueeze(-1)).squeeze(-1)


def vbm(v: Tensor, a: Tensor) -> Tensor:
    """(B, M) x (B, M, c) -> (B, c)."""
    return torch.bmm(v.unsqueeze(1), a).squeeze(1)
