"""The engine's vocabulary: the Langevin kernels it drives (:data:`KERNELS`), how walkers move at each energy
(:class:`Move`) and what a move reports (:class:`MoveInfo`).  :mod:`.smc` re-exports all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..deprecation import from_old_keywords
from .langevin import KernelInfo, LangevinState, check_step_size, mala, ula

KernelStep = Callable[..., tuple[LangevinState, KernelInfo]]


@dataclass(frozen=True)
class Kernel:
    """A Langevin kernel as the engine drives it.

    step(state, energy, step_size, generator, noise_std, rows, weighted, compile) -> (state,
    :class:`~ebmlab.sampling.langevin.KernelInfo`), the signature of :func:`~ebmlab.sampling.langevin.ula` and
    :func:`~ebmlab.sampling.langevin.mala`.  invariant: the kernel leaves exp(-U) invariant at a fixed energy,
    so walkers are reweighted before moving and the move adds no weight.
    """

    name: str
    step: KernelStep
    invariant: bool


KERNELS: dict[str, Kernel] = {
    "ula": Kernel("ula", ula, invariant=False),
    "mala": Kernel("mala", mala, invariant=True),
}
"""The kernels the engine drives, by name (the ``kernel`` of a Move or a NegativePhase); register a Kernel
here to make another one available everywhere (training, AIS, users' schedules)."""


def get_kernel(name: str) -> Kernel:
    """Look up a kernel by name; a clear ValueError lists the valid names."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown kernel {name!r}; choose one of {sorted(KERNELS)}") from None


@dataclass(frozen=True)
class Move:
    """How walkers move at each energy: kernel name, step size h, noise scale (default sqrt(2h)), the
    number of kernel steps, and whether the step runs compiled (:mod:`.compiled`: one graph per energy
    object and shape, so for a fixed module whose parameters change, not for a schedule of new energies)."""

    kernel: str = "ula"
    step_size: float = 0.1
    noise_std: float | None = None
    n_steps: int = 1
    compile: bool = False

    def __post_init__(self) -> None:
        get_kernel(self.kernel)
        check_step_size(self.step_size, self.noise_std)
        if isinstance(self.n_steps, bool) or not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {self.n_steps!r}")


LEGACY_MOVE_KEYWORDS = {
    "kernel": "kernel",
    "step_size": "step_size",
    "noise_std": "noise_std",
    "n_steps": "n_steps",
    "steps_per_update": "n_steps",
    "n_moves": "n_steps",
    "compile": "compile",
}
"""The keywords that named a :class:`Move`'s fields before the configs took one, and the field each sets."""


def move_with(owner: str, move: Move | None, legacy: dict[str, Any], base: Move) -> Move:
    """The move of a config built with the old keywords ``legacy`` (``base`` with them, warning that they are
    deprecated), else ``move`` (else ``base``).  A TypeError names unknown keywords or a mix of both forms."""
    return from_old_keywords(owner, "move", base if move is None else move, legacy, base, LEGACY_MOVE_KEYWORDS)


@dataclass(frozen=True)
class MoveInfo:
    """What one :func:`advance` / :func:`step` did: Metropolis acceptance rate over the moved walkers
    and steps (a float64 tensor, None for ULA), whether the walkers were resampled, and this process's
    acceptance counts (accepted, proposed) as a float64 (2,) tensor (None for ULA), for callers that
    reduce them together with other quantities."""

    accept_rate: Tensor | None = None
    resampled: bool = False
    counts: Tensor | None = None


__all__ = ["KERNELS", "LEGACY_MOVE_KEYWORDS", "Kernel", "Move", "MoveInfo", "get_kernel", "move_with"]
