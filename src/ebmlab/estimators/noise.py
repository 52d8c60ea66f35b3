"""Noise / proposal distributions with exact sampling and log densities (float64).

Each has ``sample(n, generator) -> (n, d)`` and ``log_prob(x) -> (n,)`` (normalised, nats), the
interface that the estimators' callers and :mod:`ebmlab.training.nce` use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


class GaussianNoise:
    """N(mean, diag(std^2)) in d dimensions."""

    def __init__(self, mean: Tensor, std: Tensor | float = 1.0):
        self.mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float64).expand_as(self.mean).clone()
        if not bool((self.std > 0).all()):
            raise ValueError(f"std must be positive, got {self.std}")

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
        if int(df) != df or df < 1:
            raise ValueError(f"df must be a positive integer, got {df}")
        self.mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        self.scale = torch.as_tensor(scale, dtype=torch.float64).expand_as(self.mean).clone()
        self.df = int(df)

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
