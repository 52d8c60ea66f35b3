"""Where the posterior walkers start: whitened coordinates and the draws at theta_0.

The walkers live in coordinates u with x = shift + S u, S a square root of the posterior covariance at theta_0
(exact for the Gaussian model, the Laplace approximation otherwise).  :class:`Whitened` is the potential in u,
U(shift + S u) - log|det S|: the Jacobian term keeps its normaliser equal to the evidence p_theta(y), and at
theta_0 an exact posterior becomes N(0, I), so one Langevin step size fits every direction.  The map is fixed
while theta moves, so every weight identity of the engine holds unchanged.

Starts (:func:`standard_normal_start`): draws u ~ N(0, I) either with log Z_0 known exactly (the posterior at
theta_0 is N(0, I) in u: zero log-weights, log Z reference = log Z_0) or as an importance sample of the posterior
(log-weights -U(u) - log N(u; 0, I), reference 0), so that the evidence estimate carries the error of log Z_0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..sampling.langevin import check_energy_shape

LOG_2PI = math.log(2 * math.pi)


class Whitened(nn.Module):
    """The potential in whitened coordinates: u (B, N, d) -> U(shift + u S^T) - log|det S| (B, N).

    potential: a batched joint potential (B, N, d) -> (B, N) whose parameters are theta; shift (B, d);
    root S (B, d, d) invertible; log_det (B,) = log|det S|.  Parameters are the potential's.
    """

    shift: Tensor
    root: Tensor
    log_det: Tensor

    def __init__(self, potential: nn.Module, shift: Tensor, root: Tensor, log_det: Tensor):
        super().__init__()
        b, d = shift.shape
        if root.shape != (b, d, d) or log_det.shape != (b,):
            raise ValueError(f"shift (B, d), root (B, d, d) and log_det (B,) disagree: {b}, {d}, {tuple(root.shape)}")
        self.potential = potential
        self.groups, self.dim = b, d
        self.register_buffer("shift", shift.detach().clone())
        self.register_buffer("root", root.detach().clone())
        self.register_buffer("log_det", log_det.detach().clone())

    def to_x(self, u: Tensor) -> Tensor:
        """Latents x = shift + u S^T (B, N, d)."""
        return self.shift[:, None] + u @ self.root.transpose(1, 2)

    def forward(self, u: Tensor) -> Tensor:
        return self.potential(self.to_x(u)) - self.log_det[:, None]


class Flat(nn.Module):
    """The view the walker engine needs: flat walkers (B * N, d), group-major, -> energies (B * N,)."""

    def __init__(self, potential: nn.Module, groups: int):
        super().__init__()
        self.potential, self.groups = potential, groups

    def forward(self, x: Tensor) -> Tensor:
        u = self.potential(x.view(self.groups, -1, x.shape[-1]))
        return u.reshape(-1)


def exact_whitening(model: nn.Module) -> Whitened:
    """Whitening by the exact posterior of a model with ``posterior() -> (mean, root, log_det)``."""
    with torch.no_grad():
        mean, root, log_det = model.posterior()  # type: ignore[operator]  # a method of the model, not a buffer
    return Whitened(model, mean, root, log_det)


def laplace_whitening(potential: nn.Module, x0: Tensor, iters: int = 50, tol: float = 1e-9) -> Whitened:
    """Whitening by the Laplace approximation at theta_0: Newton's method on U from x0 (B, d) to each group's
    mode m, then S = the Cholesky factor of the inverse Hessian there (upper-triangular L^-T of H = L L^T).
    Newton steps are halved until U decreases; a ValueError names groups whose Hessian is not positive
    definite at the end (U is not locally convex there)."""
    x = x0.detach().clone().to(torch.float64)
    for _ in range(iters):
        u, g, h = _derivatives(potential, x)
        step = torch.linalg.solve(h + 1e-12 * torch.eye(x.shape[1], dtype=x.dtype), g.unsqueeze(-1)).squeeze(-1)
        scale = torch.ones(x.shape[0], 1, dtype=x.dtype)
        for _ in range(30):  # backtracking: keep a step only where it lowers U
            with torch.no_grad():
                lower = potential((x - scale * step).unsqueeze(1)).squeeze(1) <= u
            if bool(lower.all()):
                break
            scale = torch.where(lower[:, None], scale, 0.5 * scale)
        x = x - scale * step
        if float(step.abs().max()) < tol:
            break
    _, _, h = _derivatives(potential, x)
    chol, info = torch.linalg.cholesky_ex(h)
    if bool((info != 0).any()):
        raise ValueError(f"the Hessian of U is not positive definite at the mode of group(s) {info.nonzero().tolist()}")
    eye = torch.eye(x.shape[1], dtype=x.dtype).expand_as(h)
    root = torch.linalg.solve_triangular(chol.transpose(1, 2), eye, upper=True)
    return Whitened(potential, x, root, -torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1))


def _derivatives(potential: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """U (B,), its gradient (B, d) and Hessian (B, d, d) at one point per group x (B, d)."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        u = potential(xg.unsqueeze(1)).squeeze(1)
        (g,) = torch.autograd.grad(u.sum(), xg, create_graph=True)
        rows = [torch.autograd.grad(g[:, j].sum(), xg, retain_graph=True)[0] for j in range(x.shape[1])]
    return u.detach(), g.detach(), torch.stack(rows, 1).detach()


def standard_normal_start(
    potential: Whitened, n: int, generator: torch.Generator, log_z0: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """n draws u ~ N(0, I) per group: (u (B, n, d), initial log-weights (B, n), log Z reference (B,)).

    log_z0 (B,): the exact log Z of the posterior at theta_0 when u ~ N(0, I) is that posterior (zero
    log-weights); None: importance weights -U(u) - log N(u; 0, I) with reference 0 (an unbiased start for any
    potential whose whitening is only approximate).
    """
    b, d = potential.groups, potential.dim
    u = torch.randn((b, n, d), generator=generator, dtype=torch.float64)
    if log_z0 is not None:
        ref = torch.as_tensor(log_z0, dtype=torch.float64)
        if ref.shape not in ((), (b,)) or not bool(torch.isfinite(ref).all()):
            raise ValueError(
                f"log_z0 must be a finite number or a ({b},) tensor (one per fit), got shape {tuple(ref.shape)}"
            )
        ref = ref.expand(b).clone()
        return u, torch.zeros(b, n, dtype=torch.float64), ref
    with torch.no_grad():
        energy = potential(u)
    check_energy_shape(energy.reshape(-1), u.reshape(-1, d))
    log_q = -0.5 * u.square().sum(-1) - 0.5 * d * LOG_2PI
    return u, -energy - log_q, torch.zeros(b, dtype=torch.float64)


__all__ = ["Flat", "Whitened", "exact_whitening", "laplace_whitening", "standard_normal_start"]
