"""Divergence (the error a blow-up raises and the checks that detect it) and the one integer check.

It lives below every package (the samplers, the trainers and the latent models all raise it), so that a
study can record a diverged seed and go on with the others, whoever detected the blow-up.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

DIVERGENCE_BOUND = 1e10  # |energy|, |loss| or |parameter| beyond this counts as a blow-up (nats / raw)


class DivergenceError(RuntimeError):
    """Non-finite energies, gradients, parameters or log-weights; names the iteration."""

    def __init__(self, step: int, what: str, hint: str = "Try a smaller learning rate or step size."):
        super().__init__(
            f"training diverged at iteration {step}: {what}; the last good checkpoint (if any) was kept. {hint}"
        )
        self.step = step
        self.what = what


def blow_up(values: dict[str, float], bound: float = DIVERGENCE_BOUND) -> str | None:
    """The first entry that is non-finite or beyond ``bound`` in absolute value, described, or None.
    ``values``: name -> max |.| of what it names."""
    for what, worst in values.items():
        if not math.isfinite(worst):
            return f"{what} became NaN or infinite"
        if worst > bound:
            return f"{what} reached {worst:.3g}, beyond the divergence bound {bound:.0e}"
    return None


def worst_values(tensors: dict[str, Tensor]) -> Tensor:
    """max |.| of each tensor (0 for an empty one), float64 (k,) on the first one's device (no host
    synchronisation): what :func:`check_worst` checks."""
    dev = next(iter(tensors.values())).device
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    return torch.stack([t.detach().abs().max().double().to(dev) if t.numel() else zero for t in tensors.values()])


def check_worst(
    step: int, bounded: list[str], finite: list[str], worst: Tensor, bound: float = DIVERGENCE_BOUND
) -> None:
    """Raise :class:`DivergenceError` if ``worst`` (:func:`worst_values` of the ``bounded`` then the ``finite``
    entries, maxed over processes) holds a non-finite value, or a bounded one beyond ``bound``."""
    n, vals = len(bounded), worst.tolist()  # one host synchronisation
    bad = blow_up(dict(zip(bounded, vals[:n])), bound) or blow_up(dict(zip(finite, vals[n:])), math.inf)
    if bad:
        raise DivergenceError(step, bad)


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (any integral type, e.g. a NumPy integer), or a one-line ValueError
    naming ``name`` (bools and floats refused): the one integer check of the package."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
