"""Energies with a closed-form normalizing constant: a diagonal Gaussian and a Gaussian mixture.

Both expose ``log_z()`` (exact log Z in nats, a differentiable scalar) and ``sample(n, generator)``
(exact draws), and serve as ground truth in tests and synthetic studies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Gaussian(nn.Module):
    """U(x) = sum_j (x_j - mu_j)^2 / (2 sigma_j^2); learnable mean and log-std, shape (d,)."""

    def __init__(self, mean: Tensor, std: Tensor | float = 1.0, learn_std: bool = True):
        super().__init__()
        mean = torch.as_tensor(mean)
        if mean.dim() != 1:
            raise ValueError(f"mean must have shape (d,), got {tuple(mean.shape)}")
        log_std = torch.log(torch.as_tensor(std, dtype=mean.dtype).expand_as(mean).clone())
        self.mean = nn.Parameter(mean.clone())
        self.log_std = nn.Parameter(log_std) if learn_std else nn.Buffer(log_std)

    @property
    def dim(self) -> int:
        return self.mean.numel()

    def forward(self, x: Tensor) -> Tensor:
        z = (x - self.mean) * torch.exp(-self.log_std)
        return 0.5 * (z * z).sum(-1)

    def log_z(self) -> Tensor:
        """log Z = (d/2) log 2 pi + sum_j log sigma_j."""
        return 0.5 * self.dim * math.log(2 * math.pi) + self.log_std.sum()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + torch.exp(self.log_std) * eps


class GaussianMixture(nn.Module):
    """U(x) = -log sum_i exp(b_i - |x - mu_i|^2 / (2 s_i^2)), isotropic components.

    means: (K, d) learnable; log_weights b: (K,) learnable unnormalised log-weights; stds s: (K,) fixed.
    Component masses are softmax(b_i + d log s_i); ``frozen`` indices of b are held at their initial
    value (an energy gauge: the family has a free additive constant otherwise).
    """

    def __init__(
        self,
        means: Tensor,
        log_weights: Tensor | None = None,
        stds: Tensor | float = 1.0,
        frozen: tuple[int, ...] | list[int] = (),
        learn_means: bool = True,
    ):
        super().__init__()
        means = torch.as_tensor(means)
        if means.dim() != 2:
            raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
        k = means.shape[0]
        b = (
            torch.zeros(k, dtype=means.dtype)
            if log_weights is None
            else torch.as_tensor(log_weights, dtype=means.dtype)
        )
        if b.shape != (k,):
            raise ValueError(f"log_weights must have shape ({k},), got {tuple(b.shape)}")
        mask = torch.zeros(k, dtype=torch.bool)
        for i in frozen:
            if not -k <= i < k:
                raise ValueError(f"frozen index {i} out of range for {k} components")
            mask[i] = True
        self.means = nn.Parameter(means.clone()) if learn_means else nn.Buffer(means.clone())
        self.free_log_weights = nn.Parameter(b.clone())
        self.frozen = nn.Buffer(mask)
        self.frozen_values = nn.Buffer(b.clone())
        self.log_stds = nn.Buffer(torch.log(torch.as_tensor(stds, dtype=means.dtype).expand(k).clone()))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def log_weights(self) -> Tensor:
        """Effective log-weights b (K,), frozen entries at their fixed value."""
        return torch.where(self.frozen, self.frozen_values, self.free_log_weights)

    def _component_log_terms(self, x: Tensor) -> Tensor:
        # |x - mu|^2 = |x|^2 - 2 x.mu + |mu|^2 as a matmul: much faster than broadcasting (N, K, d)
        d2 = (x * x).sum(-1, keepdim=True) - 2 * x @ self.means.T + (self.means * self.means).sum(-1)
        return self.log_weights - 0.5 * d2 * torch.exp(-2 * self.log_stds)

    def forward(self, x: Tensor) -> Tensor:
        return -torch.logsumexp(self._component_log_terms(x), dim=-1)

    def log_masses(self) -> Tensor:
        """log of the component masses (K,), summing to one."""
        return torch.log_softmax(self.log_weights + self.dim * self.log_stds, 0)

    def log_z(self) -> Tensor:
        """log Z = (d/2) log 2 pi + logsumexp_i(b_i + d log s_i)."""
        return 0.5 * self.dim * math.log(2 * math.pi) + torch.logsumexp(self.log_weights + self.dim * self.log_stds, 0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        comp = torch.multinomial(self.log_masses().exp(), n, replacement=True, generator=generator)
        return self.sample_components(comp, generator)

    @torch.no_grad()
    def sample_components(self, components: Tensor, generator: torch.Generator) -> Tensor:
        """Exact draws from the given components (M,) -> (M, d)."""
        eps = torch.randn(
            components.numel(), self.dim, generator=generator, dtype=self.means.dtype, device=self.means.device
        )
        return self.means[components] + torch.exp(self.log_stds)[components, None] * eps
