"""Noise / proposal distributions with exact sampling and log densities (float64).

Each is a :class:`Proposal`: ``sample(n, generator) -> (n, d)`` and ``log_prob(x) -> (n,)`` (normalised,
nats), the one protocol of the estimators' proposals and of the noise of :mod:`ebmlab.training.nce`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from ..errors import check_int


class Proposal(Protocol):
    """A normalised distribution: ``log_prob(x)`` (*, N, *event) -> (*, N) nats and ``sample(n, generator)``."""

    def log_prob(self, x: Tensor) -> Tensor: ...

    def sample(self, n: int, generator: torch.Generator) -> Tensor: ...


def _finite_vector(values, name: str) -> Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if t.numel() == 0 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be a non-empty vector of finite numbers, got {t.tolist()}")
    return t


def _positive(values, name: str, like: Tensor) -> Tensor:
    """Per-dimension scales broadcast to ``like``'s shape: finite and > 0."""
    t = torch.as_tensor(values, dtype=torch.float64)
    if t.numel() not in (1, like.numel()):
        raise ValueError(f"{name} must be a number or have {like.numel()} entries, got shape {tuple(t.shape)}")
    t = t.reshape(-1).expand_as(like).clone()
    if not bool((torch.isfinite(t) & (t > 0)).all()):
        raise ValueError(f"{name} must be positive and finite, got {t.tolist()}")
    return t


class GaussianNoise:
    """N(mean, diag(std^2)) in d dimensions."""

    def __init__(self, mean: Tensor, std: Tensor | float = 1.0):
        self.mean = _finite_vector(mean, "mean")
        self.std = _positive(std, "std", self.mean)

    @classmethod
    def fit(cls, x: Tensor, inflate: float = 1.0) -> GaussianNoise:
        """Moment-matched diagonal Gaussian to data x (n, d), standard deviations times ``inflate``."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() != 2 or x.shape[0] < 2:
            raise ValueError(f"fit needs data of shape (n >= 2, d), got {tuple(x.shape)}")
        return cls(x.mean(0), inflate * x.std(0).clamp_min(1e-12))

    @property
    def dim(self) -> int:
        return self.mean.numel()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.mean + self.std * eps

    def log_prob(self, x: Tensor) -> Tensor:
        z = (x.double() - self.mean) / self.std
        return -0.5 * (z * z).sum(-1) - self.std.log().sum() - 0.5 * self.dim * math.log(2 * math.pi)


class StudentTNoise:
    """Product of independent Student-t marginals with integer ``df`` degrees of freedom (heavy tails)."""

    def __init__(self, mean: Tensor, scale: Tensor | float = 1.0, df: int = 5):
        self.df = check_int("df", df, 1)
        self.mean = _finite_vector(mean, "mean")
        self.scale = _positive(scale, "scale", self.mean)

    @property
    def dim(self) -> int:
        return self.mean.numel()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        chi2 = torch.randn(n, self.dim, self.df, generator=generator, dtype=torch.float64).square().sum(-1)
        return self.mean + self.scale * z * torch.rsqrt(chi2 / self.df)

    def log_prob(self, x: Tensor) -> Tensor:
        v = self.df
        z = (x.double() - self.mean) / self.scale
        const = math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)
        per_dim = const - self.scale.log() - (v + 1) / 2 * torch.log1p(z * z / v)
        return per_dim.sum(-1)


class MixtureNoise:
    """Mixture sum_j w_j p_j of noise distributions (e.g. several Gaussians: multi-noise NCE)."""

    def __init__(self, components: Sequence, weights: Sequence[float] | Tensor | None = None):
        if not components:
            raise ValueError("a mixture needs at least one component")
        if not all(hasattr(c, "log_prob") and hasattr(c, "sample") for c in components):
            raise TypeError("mixture components must have log_prob(x) and sample(n, generator)")
        self.components = list(components)
        w = (
            torch.ones(len(components), dtype=torch.float64)
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float64)
        )
        if w.shape != (len(components),) or not bool((w > 0).all()):
            raise ValueError(f"weights must be {len(components)} positive numbers, got {w}")
        self.log_weights = (w / w.sum()).log()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        comp = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        counts = torch.bincount(comp, minlength=len(self.components)).tolist()
        draws = torch.cat([c.sample(k, generator) for c, k in zip(self.components, counts)])
        return draws[torch.randperm(n, generator=generator)]

    def log_prob(self, x: Tensor) -> Tensor:
        parts = torch.stack([c.log_prob(x) for c in self.components], -1)
        return torch.logsumexp(parts + self.log_weights, -1)
