"""Resampling schemes for weighted particles.

Each scheme maps normalised weights w (N,) (float64, summing to one) to ancestor indices (M,)
such that the expected number of copies of particle i is M * w_i.  Systematic, stratified and
residual resampling have lower variance than multinomial.  Every draw uses the given generator.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..deprecation import from_old_keywords

Resampler = Callable[[Tensor, int, torch.Generator], Tensor]
SCOPES = ("global", "local")


def check_weights(weights: Tensor, m: int) -> None:
    """Raise ValueError unless ``weights`` is a 1-D float tensor of finite non-negative values summing to
    one (to 1e-9 in float64, 1e-4 otherwise) and ``m`` a positive integer: what every scheme assumes."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"the number of draws m must be an integer >= 1, got {m!r}")
    if not isinstance(weights, Tensor) or weights.dim() != 1 or not weights.is_floating_point() or not len(weights):
        raise ValueError("weights must be a non-empty 1-D floating-point tensor (normalised, e.g. softmax(log_w))")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("weights must be finite and non-negative; got NaN, infinite or negative values")
    total = float(weights.double().sum())
    if abs(total - 1.0) > (1e-9 if weights.dtype == torch.float64 else 1e-4):
        raise ValueError(f"weights must sum to one (normalise them, e.g. softmax of the log-weights), not {total}")


def _validated(scheme: Resampler) -> Resampler:
    """Every public scheme checks its input with :func:`check_weights` first."""

    @functools.wraps(scheme)
    def checked(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
        check_weights(weights, m)
        return scheme(weights, m, generator)

    return checked


def _uniform(n: int, generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64, device=like.device)


def _inverse_cdf(weights: Tensor, positions: Tensor) -> Tensor:
    """Indices i with cdf[i-1] <= position < cdf[i], for sorted positions in [0, 1)."""
    cdf = torch.cumsum(weights, 0)
    cdf[-1] = 1.0  # guard against round-off leaving the last bin short of 1
    return torch.searchsorted(cdf, positions, right=True).clamp_(max=weights.numel() - 1)


@_validated
def multinomial(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """M independent draws from Categorical(w)."""
    return torch.multinomial(weights, m, replacement=True, generator=generator)


@_validated
def systematic(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """One uniform u; positions (u + j) / M for j = 0..M-1."""
    u = _uniform(1, generator, weights)
    positions = (torch.arange(m, dtype=torch.float64, device=weights.device) + u) / m
    return _inverse_cdf(weights, positions)


@_validated
def stratified(weights: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """One uniform per stratum; positions (u_j + j) / M."""
    positions = (torch.arange(m, dtype=torch.float64, device=weights.device) + _uniform(m, generator, weights)) / m
    return _inverse_cdf(weights, positions)


@_validated
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
"""The resamplers by name (the ``resampler`` option of the walkers, the trainer and the studies)."""


def get_resampler(name: str) -> Resampler:
    """Look up a scheme by name; a clear ValueError lists the valid names."""
    try:
        scheme = RESAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown resampler {name!r}; choose one of {sorted(RESAMPLERS)}") from None

    return scheme


def check_threshold(threshold: float, name: str = "ess_threshold") -> float:
    """``threshold`` as a float if it is a number in (0, 1] (an ESS fraction; NaN refused), else a one-line
    ValueError naming ``name``: the one check of every ESS threshold and target."""
    ok = isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and math.isfinite(threshold)
    if not (ok and 0 < threshold <= 1):
        raise ValueError(f"{name} must lie in (0, 1] (a fraction of the walkers), got {threshold!r}")
    return float(threshold)


@dataclass(frozen=True)
class Resampling:
    """When and how a population is resampled: when its ESS/N falls below ``threshold`` (in (0, 1]), by
    ``scheme`` (a name in :data:`RESAMPLERS`), over the whole population (``scope="global"``) or each
    process's walkers (``"local"``).  Validated once, at construction."""

    threshold: float = 0.5
    scheme: str = "systematic"
    scope: str = "global"

    def __post_init__(self) -> None:
        check_threshold(self.threshold)
        get_resampler(self.scheme)
        if self.scope not in SCOPES:
            raise ValueError(f"resample_scope must be one of {SCOPES}, got {self.scope!r}")


KEYWORDS = {"ess_threshold": "threshold", "resampler": "scheme", "scope": "scope"}
"""The keywords that carried a :class:`Resampling`'s fields before the engine took one, and the field each sets."""


def resampling_with(
    owner: str, resampling: Resampling | None, legacy: dict[str, Any], base: Resampling
) -> Resampling | None:
    """The resampling of a call made with the old keywords ``legacy`` (``base`` with them, warning that they are
    deprecated; ``ess_threshold=None``: never), else ``resampling`` (the parameter's default must be ``base``)."""
    if "ess_threshold" in legacy and legacy["ess_threshold"] is None:  # checked and warned like the others
        from_old_keywords(owner, "resampling", resampling, legacy | {"ess_threshold": base.threshold}, base, KEYWORDS)
        return None
    return from_old_keywords(owner, "resampling", resampling, legacy, base, KEYWORDS)


def multinomial_below(threshold: float | None) -> Resampling | None:
    """Multinomial resampling whenever ESS/N < ``threshold`` (None: never): what an estimate whose genealogy
    standard error must hold (AIS, tempering, an estimator population) uses."""
    return None if threshold is None else Resampling(threshold, "multinomial")
