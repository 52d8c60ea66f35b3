"""Batched regression models as joint potentials U(theta, x) = -log p_theta(x, y), in nats.

Every model holds B independent fits (a leading group dimension on the data and on theta) and maps latents
x (B, N, d) to energies (B, N).  The latent x is the weight vector w of a linear predictor y_j ~ phi_j . w with
prior w ~ N(0, alpha^-1 I); theta = (log sigma^2, log alpha), one pair per group (parameters ``log_sigma2`` and
``log_alpha``, each (B,)).  The Gaussian model keeps only the sufficient statistics (Phi^T Phi, Phi^T y, y^T y,
n), so its cost does not depend on the number of observations, and has the closed-form evidence
log N(y; 0, sigma^2 I + alpha^-1 Phi Phi^T) and posterior (Bishop 2006, section 3.5).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LOG_2PI = math.log(2 * math.pi)


def polynomial_features(t: Tensor, order: int) -> Tensor:
    """Monomials 1, t, ..., t^order of inputs t (..., n): (..., n, order + 1)."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"the polynomial order must be an integer >= 0, got {order!r}")
    return t.unsqueeze(-1) ** torch.arange(order + 1, dtype=t.dtype, device=t.device)


def check_regression_data(features: Tensor, y: Tensor) -> None:
    """Raise ValueError unless features (B, n, d) and y (B, n) are finite float64 tensors that match."""
    for name, t, dim in (("features", features, 3), ("y", y, 2)):
        if not isinstance(t, Tensor) or t.dtype != torch.float64 or t.dim() != dim:
            raise ValueError(f"{name} must be a float64 tensor with {dim} dimensions, got {_describe(t)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values: clean the data first")
    if features.shape[:2] != y.shape:
        raise ValueError(f"features (B, n, d) and y (B, n) disagree: {tuple(features.shape)} and {tuple(y.shape)}")


def _describe(t: object) -> str:
    return f"{t.dtype} of shape {tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__


def _theta(value: Tensor | float, b: int, name: str) -> nn.Parameter:
    t = torch.as_tensor(value, dtype=torch.float64)
    t = t.expand(b).clone() if t.dim() == 0 else t.clone()
    if t.shape != (b,) or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be a finite number or a ({b},) tensor, got {_describe(t)}")
    return nn.Parameter(t)


class _Regression(nn.Module):
    """theta = (log sigma^2, log alpha) per group and the Gaussian prior's energy."""

    def __init__(self, b: int, d: int, log_sigma2: Tensor | float, log_alpha: Tensor | float):
        super().__init__()
        self.groups, self.dim = b, d
        self.log_sigma2 = _theta(log_sigma2, b, "log_sigma2")
        self.log_alpha = _theta(log_alpha, b, "log_alpha")

    @property
    def theta(self) -> Tensor:
        """(B, 2): (log sigma^2, log alpha) of each group, detached."""
        return torch.stack([self.log_sigma2, self.log_alpha], 1).detach()

    def prior_energy(self, x: Tensor) -> Tensor:
        """-log N(x; 0, alpha^-1 I) for x (B, N, d): (B, N)."""
        la = self.log_alpha[:, None]
        return 0.5 * la.exp() * x.square().sum(-1) - 0.5 * self.dim * (la - LOG_2PI)

    def check_latents(self, x: Tensor) -> None:
        if x.dim() != 3 or x.shape[0] != self.groups or x.shape[2] != self.dim:
            raise ValueError(f"latents must have shape ({self.groups}, N, {self.dim}), got {tuple(x.shape)}")


class BayesLinearRegression(_Regression):
    """y = Phi w + N(0, sigma^2 I), w ~ N(0, alpha^-1 I), from sufficient statistics.

    gram: Phi^T Phi (B, d, d); phi_y: Phi^T y (B, d); yy: y^T y (B,); n: observations per group (B,)
    (groups may have different n).  Build it with :meth:`from_data`.
    """

    gram: Tensor
    phi_y: Tensor
    yy: Tensor
    n: Tensor

    def __init__(self, gram: Tensor, phi_y: Tensor, yy: Tensor, n: Tensor, log_sigma2=0.0, log_alpha=0.0):
        b, d = phi_y.shape
        super().__init__(b, d, log_sigma2, log_alpha)
        if gram.shape != (b, d, d) or yy.shape != (b,) or n.shape != (b,):
            raise ValueError("gram (B, d, d), phi_y (B, d), yy (B,) and n (B,) must agree in B and d")
        for name, t in (("gram", gram), ("phi_y", phi_y), ("yy", yy), ("n", n)):
            self.register_buffer(name, t.to(torch.float64))

    @classmethod
    def from_data(cls, features: Tensor, y: Tensor, **theta) -> BayesLinearRegression:
        """From features Phi (B, n, d) and observations y (B, n), float64."""
        check_regression_data(features, y)
        gram = features.transpose(1, 2) @ features
        phi_y = (features.transpose(1, 2) @ y.unsqueeze(-1)).squeeze(-1)
        n = torch.full((y.shape[0],), float(y.shape[1]), dtype=torch.float64)
        return cls(gram, phi_y, y.square().sum(1), n, **theta)

    def rss(self, x: Tensor) -> Tensor:
        """Residual sum of squares |y - Phi x|^2 for x (B, N, d): (B, N)."""
        quad = ((x @ self.gram) * x).sum(-1)
        return self.yy[:, None] - 2 * (x * self.phi_y[:, None]).sum(-1) + quad

    def forward(self, x: Tensor) -> Tensor:
        ls = self.log_sigma2[:, None]
        lik = 0.5 * self.rss(x) * torch.exp(-ls) + 0.5 * self.n[:, None] * (ls + LOG_2PI)
        return lik + self.prior_energy(x)

    def posterior(self) -> tuple[Tensor, Tensor, Tensor]:
        """The exact posterior N(mean, S S^T): mean (B, d), an upper-triangular square root S (B, d, d) of the
        covariance (A^-1 with A = alpha I + Phi^T Phi / sigma^2) and log det S (B,); differentiable in theta."""
        a = self.precision()
        chol = torch.linalg.cholesky(a)
        rhs = (self.phi_y * torch.exp(-self.log_sigma2)[:, None]).unsqueeze(-1)
        mean = torch.cholesky_solve(rhs, chol).squeeze(-1)
        eye = torch.eye(self.dim, dtype=a.dtype).expand_as(a)
        root = torch.linalg.solve_triangular(chol.transpose(1, 2), eye, upper=True)  # L^-T: S S^T = A^-1
        return mean, root, -torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)

    def precision(self) -> Tensor:
        """Posterior precision alpha I + Phi^T Phi / sigma^2 (B, d, d)."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        return self.log_alpha.exp()[:, None, None] * eye + self.gram * torch.exp(-self.log_sigma2)[:, None, None]

    def log_evidence(self) -> Tensor:
        """Closed-form log p_theta(y) (B,) in nats, differentiable in theta:
        d/2 log alpha - n/2 log(2 pi sigma^2) - U_lik+prior at the posterior mean - 1/2 log det A + d/2 log 2 pi,
        i.e. log of the Gaussian integral of exp(-U) (Laplace is exact here)."""
        mean, _, log_det_root = self.posterior()
        return -self(mean.unsqueeze(1)).squeeze(1) + 0.5 * self.dim * LOG_2PI + log_det_root


class StudentTRegression(_Regression):
    """y_j = phi_j . w + sigma e_j with e_j ~ Student-t(nu) (nu fixed), w ~ N(0, alpha^-1 I).

    features (B, n, d), y (B, n) float64; nu > 0 degrees of freedom (known, not learned).
    """

    features: Tensor
    y: Tensor

    def __init__(self, features: Tensor, y: Tensor, nu: float, log_sigma2=0.0, log_alpha=0.0):
        check_regression_data(features, y)
        if not (isinstance(nu, (int, float)) and math.isfinite(nu) and nu > 0):
            raise ValueError(f"nu (degrees of freedom) must be a positive number, got {nu!r}")
        super().__init__(features.shape[0], features.shape[2], log_sigma2, log_alpha)
        self.nu = float(nu)
        self.register_buffer("features", features)
        self.register_buffer("y", y)

    def forward(self, x: Tensor) -> Tensor:
        nu, n = self.nu, self.y.shape[1]
        resid = self.y[:, None, :] - x @ self.features.transpose(1, 2)  # (B, N, n)
        ls = self.log_sigma2[:, None]
        log_norm = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
        nll = 0.5 * (nu + 1) * torch.log1p(resid.square() * torch.exp(-ls)[..., None] / nu).sum(-1)
        return nll + n * (0.5 * ls - log_norm) + self.prior_energy(x)


__all__ = ["BayesLinearRegression", "StudentTRegression", "check_regression_data", "polynomial_features"]
