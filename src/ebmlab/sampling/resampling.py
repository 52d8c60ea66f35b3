"""Resampling schemes for weighted particles.

Each scheme maps normalised weights w (N,) (float64, summing to one) to ancestor indices (M,)
such that the expected number of copies of particle i is M * w_i.  Systematic, stratified and
residual resampling have lower variance than multinomial.  Every draw uses the given generator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Resampler = Callable[[Tensor, int, torch.Generator], Tensor]


def _uniform(n: int, generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64, device=like.device)


def _inverse_cdf(weights: Tensor, positions: Tensor) -> Tensor:
    """Indices i with cdf[i-1] <= position < cdf[i], for sorted positions in [0, 1)."""
    cdf = torch.cumsum(weights, 0)
    cdf[-1] = 1.0  # guard against round-off leaving the last bin short of 1
    return torch.searchsorted(cdf, positions, right=True).clamp_(max=weights.numel() - 1)


def multinomial(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """M independent draws from Categorical(w)."""
    return torch.multinomial(weights, m, replacement=True, generator=generator)


def systematic(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """One uniform u; positions (u + j) / M for j = 0..M-1."""
    u = _uniform(1, generator, weights)
    positions = (torch.arange(m, dtype=torch.float64, device=weights.device) + u) / m
    return _inverse_cdf(weights, positions)


def stratified(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """One uniform per stratum; positions (u_j + j) / M."""
    positions = (torch.arange(m, dtype=torch.float64, device=weights.device) + _uniform(m, generator, weights)) / m
    return _inverse_cdf(weights, positions)


def residual(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """floor(M w_i) deterministic copies, the remainder by multinomial draws on the residual weights."""
    mw = m * weights
    counts = torch.floor(mw).long()
    rest = m - int(counts.sum())
    if rest > 0:
        res = (mw - counts).clamp_min(0)
        counts = counts + torch.bincount(multinomial(res / res.sum(), rest, generator), minlength=weights.numel())
    return torch.repeat_interleave(torch.arange(weights.numel(), device=weights.device), counts)


RESAMPLERS: dict[str, Resampler] = {
    "multinomial": multinomial,
    "systematic": systematic,
    "stratified": stratified,
    "residual": residual,
}


def get_resampler(name: str) -> Resampler:
    """Look up a scheme by name; a clear ValueError lists the valid names."""
    try:
        return RESAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown resampler {name!r}; choose one of {sorted(RESAMPLERS)}") from None
