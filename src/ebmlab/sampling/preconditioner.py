"""An affine change of coordinates for the walkers' kernels, so that one step size fits every direction of an
ill-conditioned target (:func:`ebmlab.sampling.smc.advance` with ``precondition=``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .langevin import EnergyFn, LangevinState


@dataclass(frozen=True)
class Preconditioner:
    """An affine change of coordinates x = shift + u L^T for flat walkers x (N, d).

    Kernels that run in u see a target whose covariance is (L^T)^-1 Cov(x) L^-1: with shift and L L^T the
    target's mean and covariance it is N(0, I)-shaped, so one step size fits every direction of an
    ill-conditioned target.  The map is fixed while the walkers move, so a kernel that leaves exp(-U(x))
    invariant in x still does (the Jacobian is a constant); the ULA log-weight increment is unchanged by the
    map for the same reason.  shift (d,), chol (d, d) lower-triangular and invertible, in the walkers' dtype.
    """

    shift: Tensor
    chol: Tensor

    def __post_init__(self) -> None:
        d = self.shift.shape[0] if self.shift.dim() == 1 else -1
        if self.shift.dim() != 1 or self.chol.shape != (d, d):
            raise ValueError(
                f"a Preconditioner needs shift (d,) and chol (d, d); got {tuple(self.shift.shape)} and "
                f"{tuple(self.chol.shape)}"
            )
        if not bool(torch.isfinite(self.shift).all() & torch.isfinite(self.chol).all()):
            raise ValueError("a Preconditioner needs a finite shift and chol; got NaN or infinite values")
        if not bool((torch.diagonal(self.chol) > 0).all()) or bool(torch.triu(self.chol, 1).any()):
            raise ValueError(
                "chol must be lower-triangular with a positive diagonal (a Cholesky factor, e.g. "
                "torch.linalg.cholesky(cov)); its maps would not invert each other otherwise"
            )

    @classmethod
    def from_moments(cls, x: Tensor, weights: Tensor, ridge: float = 1e-6) -> Preconditioner:
        """The weighted mean and the Cholesky factor of the weighted covariance of walkers x (N, d), with
        ``ridge`` times the mean variance added to the diagonal (a singular covariance stays invertible)."""
        if x.dim() != 2 or weights.shape != x.shape[:1]:
            raise ValueError(
                f"from_moments needs walkers (N, d) and weights (N,), got {tuple(x.shape)}, {tuple(weights.shape)}"
            )
        if not bool(torch.isfinite(weights).all() & (weights >= 0).all()) or not bool(weights.sum() > 0):
            raise ValueError("from_moments needs finite, non-negative weights with a positive sum (not all zero)")
        w = (weights / weights.sum()).to(torch.float64)
        xd = x.double()
        mean = w @ xd
        cov = (xd - mean).T @ ((xd - mean) * w[:, None])
        eye = torch.eye(x.shape[1], dtype=torch.float64, device=x.device)
        cov = cov + ridge * float(torch.diagonal(cov).mean().clamp_min(1e-300)) * eye
        return cls(mean.to(x.dtype), torch.linalg.cholesky(cov).to(x.dtype))

    def check(self, x: Tensor) -> None:
        """Raise ValueError unless walkers x are flat (N, d) with this preconditioner's d and dtype."""
        if x.dim() != 2 or x.shape[1] != self.shift.shape[0] or x.dtype != self.shift.dtype:
            raise ValueError(
                f"the preconditioner is for walkers (N, {self.shift.shape[0]}) of dtype {self.shift.dtype}; got "
                f"{tuple(x.shape)} of dtype {x.dtype} (flatten the event shape to precondition)"
            )

    def to_u(self, state: LangevinState) -> LangevinState:
        """The state in u: u = L^-1 (x - shift), grad_u U = L^T grad_x U (energies unchanged)."""
        self.check(state.x)
        u = torch.linalg.solve_triangular(self.chol, (state.x - self.shift).T, upper=False).T
        return LangevinState(u, state.energy, state.grad @ self.chol)

    def to_x(self, state: LangevinState) -> LangevinState:
        """The state back in x: x = shift + u L^T, grad_x U = L^-T grad_u U."""
        grad = torch.linalg.solve_triangular(self.chol.T, state.grad.T, upper=True).T
        return LangevinState(self.shift + state.x @ self.chol.T, state.energy, grad)

    def energy(self, energy: EnergyFn) -> EnergyFn:
        """The energy as a function of u, u -> U(shift + u L^T)."""
        return lambda u: energy(self.shift + u @ self.chol.T)


__all__ = ["Preconditioner"]
