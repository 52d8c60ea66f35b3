"""Class masses of a model: how much probability exp(-U)/Z puts on each class region.

Regions are given by a labelling function of points (e.g. a classifier fitted in the same
coordinates).  Two ways to compute them:

- :class:`GridQuadrature` (1-D or 2-D): the midpoint rule on a regular grid over the cube
  [-L, L]^d, with each cell labelled by its centre.  log Z = logsumexp(-U(cells)) + log(cell volume)
  and mass_c = sum of softmax(-U) over the cells labelled c.  Errors: discretisation (O(h^2) for the
  smooth integrand, O(h) where a region boundary cuts cells) and truncation (mass beyond the cube);
  :class:`QuadratureCheck` measures both by refining the grid and doubling the cube.
- :func:`weighted_class_masses`: from weighted draws (importance weights, SMC populations), with a
  standard error that accounts for shared ancestors after resampling; :func:`ais_class_masses`
  draws them by annealed importance sampling from a tractable base, for any dimension.

Masses are float64 and sum to one; log Z is in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..estimators import geometric_path
from ..sampling import smc
from ..sampling.langevin import init_state, mala
from ..sampling.walkers import ess_fraction, log_z_estimate, log_z_se

Labeller = Callable[[Tensor], Tensor]  # points (M, d) -> class indices (M,) int64


class ExactModel(Protocol):
    """An energy with exact draws and a closed-form log Z, e.g. :class:`~ebmlab.energies.Gaussian`."""

    def __call__(self, x: Tensor) -> Tensor: ...

    def log_z(self) -> Tensor: ...

    def sample(self, n: int, generator: torch.Generator) -> Tensor: ...


def total_variation(p: Tensor | Sequence[float], q: Tensor | Sequence[float]) -> float:
    """Total-variation distance 0.5 sum_c |p_c - q_c| between two discrete distributions."""
    p, q = (torch.as_tensor(v, dtype=torch.float64).cpu() for v in (p, q))
    if p.shape != q.shape or p.dim() != 1:
        raise ValueError(f"need two distributions of the same length, got shapes {tuple(p.shape)}, {tuple(q.shape)}")
    return 0.5 * float((p - q).abs().sum())


def grid_points(
    half_width: float, n: int, dim: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> Tensor:
    """Centres (n^dim, dim) of the n^dim equal cells of the cube [-half_width, half_width]^dim (the one grid
    of the package), in lexicographic order: the last coordinate varies fastest."""
    if dim not in (1, 2):
        raise ValueError(f"grid quadrature is for 1-D or 2-D models, got dim={dim}; use a sampling estimate")
    if not (half_width > 0 and n >= 2):
        raise ValueError(f"need half_width > 0 and n >= 2 cells per axis, got {half_width}, {n}")
    h = 2.0 * half_width / n
    axis = -half_width + h * (torch.arange(n, dtype=dtype, device=device) + 0.5)
    return torch.cartesian_prod(*[axis] * dim).reshape(-1, dim)


@dataclass(frozen=True)
class GridQuadrature:
    """Midpoint rule for exp(-U) on the cube [-half_width, half_width]^dim with n cells per axis.

    points: (n^dim, dim) cell centres; labels: (n^dim,) class of each centre; edge: (n^dim,) bool,
    the outermost ring of cells; n_classes: C.  Build with :meth:`build`; call with an energy to get
    :class:`GridResult`.
    """

    half_width: float
    n: int
    dim: int
    points: Tensor
    labels: Tensor
    edge: Tensor
    n_classes: int

    @classmethod
    def build(cls, labeller: Labeller, half_width: float, n: int, dim: int, n_classes: int) -> GridQuadrature:
        points = grid_points(half_width, n, dim)
        labels = labeller(points).to(torch.int64)
        if labels.shape != points.shape[:1] or int(labels.min()) < 0 or int(labels.max()) >= n_classes:
            raise ValueError(f"the labeller must return one class in [0, {n_classes}) per point")
        index = torch.cartesian_prod(*[torch.arange(n)] * dim).reshape(-1, dim)
        edge = ((index == 0) | (index == n - 1)).any(1)
        return cls(float(half_width), int(n), int(dim), points, labels, edge, int(n_classes))

    @property
    def log_cell_volume(self) -> float:
        return self.dim * math.log(2.0 * self.half_width / self.n)

    def log_density(self, energy: nn.Module, batch: int = 65_536) -> Tensor:
        """-U at the cell centres, (n^dim,) float64 (computed in the energy's dtype)."""
        dtype = next(energy.parameters()).dtype
        with torch.no_grad():
            parts = [energy(self.points[i : i + batch].to(dtype)) for i in range(0, self.points.shape[0], batch)]
        return -torch.cat(parts).double()

    def __call__(self, energy: nn.Module) -> GridResult:
        return self.integrate(self.log_density(energy))

    def integrate(self, log_density: Tensor) -> GridResult:
        """Masses, log Z and edge mass from -U at the cell centres (n^dim,)."""
        w = torch.softmax(log_density, 0)
        masses = torch.zeros(self.n_classes, dtype=torch.float64).index_add_(0, self.labels, w)
        return GridResult(
            masses=masses,
            log_z=float(torch.logsumexp(log_density, 0)) + self.log_cell_volume,
            edge_mass=float(w[self.edge].sum()),
        )


@dataclass(frozen=True)
class GridResult:
    """masses: (C,) float64; log_z: nats; edge_mass: mass of the outermost ring of cells (a large
    value means the cube cuts off part of the model)."""

    masses: Tensor
    log_z: float
    edge_mass: float


@dataclass(frozen=True)
class QuadratureCheck:
    """The grid (half_width, n) with two companions that estimate its error: twice as many cells per
    axis (discretisation) and the cube twice as wide at the same spacing (truncation; for even n the
    inner cells coincide).  The grids are labelled once at :meth:`build`; a call costs three energy
    evaluations."""

    base: GridQuadrature
    fine: GridQuadrature
    wide: GridQuadrature

    @classmethod
    def build(cls, labeller: Labeller, half_width: float, n: int, dim: int, n_classes: int) -> QuadratureCheck:
        grids = ((half_width, n), (half_width, 2 * n), (2 * half_width, 2 * n))
        return cls(*(GridQuadrature.build(labeller, hw, m, dim, n_classes) for hw, m in grids))

    def __call__(self, energy: nn.Module) -> dict[str, Any]:
        """Masses and log Z on the base grid, its edge mass, and the errors: max |mass difference| over
        classes and |log Z difference| against the fine and the wide grid."""
        base, fine, wide = self.base(energy), self.fine(energy), self.wide(energy)

        def diff(other: GridResult) -> tuple[float, float]:
            return float((other.masses - base.masses).abs().max()), abs(other.log_z - base.log_z)

        (m_fine, z_fine), (m_wide, z_wide) = diff(fine), diff(wide)
        return {
            "masses": base.masses.tolist(),
            "log_z": base.log_z,
            "edge_mass": base.edge_mass,
            "half_width": self.base.half_width,
            "cells_per_axis": self.base.n,
            "mass_error_refine": m_fine,
            "log_z_error_refine": z_fine,
            "mass_error_wide": m_wide,
            "log_z_error_wide": z_wide,
        }


def weighted_class_masses(
    labels: Tensor, log_w: Tensor | None, n_classes: int, eve: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Class masses (C,) of weighted draws and their standard errors (C,), float64.

    labels: (N,) class of each draw; log_w: (N,) log importance weights (None = equal weights);
    eve: (N,) int64 index of each draw's initial ancestor in a resampled (SMC) population (None =
    independent draws).  With normalised weights w, m_c = sum_i w_i 1[c_i = c] and

        SE_c^2 = sum_e (sum_{i: eve_i = e} w_i (1[c_i = c] - m_c))^2,

    the genealogy variance estimator of Chan & Lai (2013): draws that descend from one ancestor
    count as one.  For independent draws it is the self-normalised importance-sampling variance
    sum_i w_i^2 (1[c_i = c] - m_c)^2 (for equal weights the binomial m(1 - m)/N).  When few ancestors
    survive, the estimate itself becomes unreliable (it is 0 for a single one).
    """
    n = labels.numel()
    if n < 2 or labels.shape != (n,):
        raise ValueError(f"labels must have shape (N,) with N >= 2, got {tuple(labels.shape)}")
    w = torch.full((n,), 1.0 / n, dtype=torch.float64) if log_w is None else torch.softmax(log_w.double(), 0)
    if w.shape != (n,) or (eve is not None and eve.shape != (n,)):
        raise ValueError(f"log_w and eve must have shape ({n},)")
    one_hot = nn.functional.one_hot(labels.to(torch.int64), n_classes).double()
    masses = w @ one_hot
    terms = w[:, None] * (one_hot - masses)
    if eve is not None:
        terms = torch.zeros(n, n_classes, dtype=torch.float64).index_add_(0, eve.to(torch.int64), terms)
    return masses, terms.square().sum(0).sqrt()


def mala_chain_ends(
    energy: nn.Module, x0: Tensor, steps: int, step_size: float, generator: torch.Generator
) -> tuple[Tensor, float]:
    """End points (R, *event) of independent MALA chains targeting exp(-energy) at fixed parameters,
    started at x0 (R, *event), after ``steps`` steps of size ``step_size``; and the mean acceptance rate
    (NaN for zero steps).  Labelled and passed to :func:`weighted_class_masses` without weights, they
    give the model's class masses with binomial standard errors, as far as the chains have mixed."""
    state, accepted = init_state(energy, x0), torch.zeros((), dtype=torch.float64)
    for _ in range(steps):
        state, info = mala(state, energy, step_size, generator)
        assert info.accepted is not None  # MALA reports its accept decisions
        accepted += info.accepted.double().mean()
    return state.x, float(accepted / steps) if steps else math.nan


def ais_class_masses(
    energy: nn.Module,
    base: ExactModel,
    labeller: Labeller,
    n_classes: int,
    *,
    particles: int,
    steps: int,
    move: smc.Move,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Class masses and log Z of exp(-energy) by annealed importance sampling from ``base`` (an energy
    with exact ``sample(n, generator)`` and ``log_z()``, e.g. :class:`~ebmlab.energies.Gaussian`) along
    the geometric path, ``steps`` equal steps with ``move`` (use an invariant kernel, e.g. MALA) at each,
    no resampling: the particles are independent, so the importance-sampling standard errors hold.

    Returns masses (C,) and their standard errors, log Z (nats) and its standard error, ESS/N and
    the mean acceptance rate (None for a non-Metropolis kernel).
    """
    if particles < 2 or steps < 1:
        raise ValueError(f"need particles >= 2 and steps >= 1, got {particles}, {steps}")
    with torch.no_grad():
        log_z0 = float(base.log_z())
    walkers = smc.start(base, base.sample(particles, generator), log_z0)
    betas = torch.linspace(0, 1, steps + 1, dtype=torch.float64)[1:].tolist()
    walkers, infos = smc.anneal(walkers, [geometric_path(base, energy, b) for b in betas], move, generator)
    masses, se = weighted_class_masses(labeller(walkers.x), walkers.log_w, n_classes)
    rates = [i.accept_rate for i in infos if i.accept_rate is not None]
    return {
        "masses": masses.tolist(),
        "masses_se": se.tolist(),
        "log_z": float(log_z_estimate(walkers)),
        "log_z_se": float(log_z_se(walkers)),
        "ess_frac": float(ess_fraction(walkers.log_w)),
        "acceptance": float(torch.stack(rates).mean()) if rates else None,
    }
