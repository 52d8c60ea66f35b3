"""Importance sampling of a model's class masses from the data side: a defensive mixture of one Gaussian per
class, fitted to that class's training points, and the initial model (Hesterberg 1995)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..uncertainty import se_from_relvar
from .masses import ExactModel, Labeller, weighted_class_masses


class ClassGaussians:
    """The defensive proposal: one full-covariance Gaussian per class fitted to that class's points, mixed in
    the classes' proportions with weight 1 - ``defensive``, plus ``base`` (a :class:`~ebmlab.energies.Gaussian`
    with exact ``log_z`` and ``sample``) with weight ``defensive``."""

    def __init__(
        self, points: Tensor, labels: Tensor, n_classes: int, base: ExactModel, defensive: float, ridge: float
    ):
        if points.dim() != 2 or labels.shape != points.shape[:1]:
            raise ValueError(f"need points (N, d) and labels (N,), got {tuple(points.shape)}, {tuple(labels.shape)}")
        x = points.double()
        d = x.shape[1]
        means, chols, counts = [], [], []
        for c in range(n_classes):
            xc = x[labels == c]
            if xc.shape[0] < 2:
                raise ValueError(f"class {c} has {xc.shape[0]} training points; a Gaussian needs at least 2")
            cov = torch.cov(xc.T).reshape(d, d)
            cov = cov + ridge * float(torch.diagonal(cov).mean()) * torch.eye(d, dtype=torch.float64)
            means.append(xc.mean(0))
            chols.append(torch.linalg.cholesky(cov))
            counts.append(xc.shape[0])
        props = torch.tensor(counts, dtype=torch.float64) / sum(counts)
        self.log_mix = torch.log(torch.cat([(1 - defensive) * props, torch.tensor([defensive], dtype=torch.float64)]))
        self.means, self.chols, self.base, self.dtype = torch.stack(means), torch.stack(chols), base, points.dtype

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n draws (n, d): a component by its mixture weight, then a draw from it."""
        k = torch.multinomial(self.log_mix.exp(), n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        x = torch.empty_like(z)
        for j, (mean, chol) in enumerate(zip(self.means, self.chols)):
            chosen = k == j
            x[chosen] = mean + z[chosen] @ chol.T
        defensive = k == len(self.means)
        x[defensive] = self.base.sample(int(defensive.sum()), generator).double()
        return x.to(self.dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        """log q(x) (n,), float64."""
        xd = x.double()
        diff = xd[None] - self.means[:, None]  # (K, n, d)
        sol = torch.linalg.solve_triangular(self.chols, diff.transpose(1, 2), upper=False)  # (K, d, n)
        log_det = torch.log(torch.diagonal(self.chols, dim1=1, dim2=2)).sum(1)
        d = x.shape[1]
        comp = -0.5 * sol.square().sum(1) - log_det[:, None] - 0.5 * d * math.log(2 * math.pi)
        with torch.no_grad():
            base = -self.base(x).double() - float(self.base.log_z())
        return torch.logsumexp(self.log_mix[:, None] + torch.cat([comp, base[None]]), 0)


def importance_class_masses(
    energy: nn.Module, proposal: ClassGaussians, labeller: Labeller, n_classes: int, draws: int, generator
) -> dict[str, Any]:
    """Masses (C,) with their self-normalised SEs, log Z (nats) with its SE (the package's convention,
    :func:`ebmlab.uncertainty.se_from_relvar`), and ESS/N, by importance sampling ``draws`` points from
    ``proposal``."""
    x = proposal.sample(draws, generator)
    with torch.no_grad():
        log_w = -energy(x).double() - proposal.log_prob(x)
    if not bool(torch.isfinite(log_w).all()):
        raise ValueError("importance weights of the class-Gaussian proposal are not finite: check the energy")
    masses, se = weighted_class_masses(labeller(x), log_w, n_classes)
    w = torch.softmax(log_w, 0)
    relvar = (draws * w.square().sum() - 1.0) / (draws - 1)  # Var(Z_hat) / Z^2 estimate
    return {
        "masses": masses.tolist(),
        "masses_se": se.tolist(),
        "log_z": float(torch.logsumexp(log_w, 0) - math.log(draws)),
        "log_z_se": float(se_from_relvar(relvar)),
        "ess_frac": float(1.0 / w.square().sum() / draws),
    }


__all__ = ["ClassGaussians", "importance_class_masses"]
