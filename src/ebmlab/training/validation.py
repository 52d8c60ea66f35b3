"""Input checks and divergence detection shared by the trainers."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..distributed import LOCAL, Collective

DIVERGENCE_BOUND = 1e10  # |energy|, |loss| or |parameter| beyond this counts as a blow-up (nats / raw)


class DivergenceError(RuntimeError):
    """Non-finite energies, gradients, parameters or log-weights; names the iteration."""

    def __init__(self, step: int, what: str, hint: str = "Try a smaller learning rate or step size."):
        super().__init__(
            f"training diverged at iteration {step}: {what}; the last good checkpoint (if any) was kept. {hint}"
        )
        self.step = step
        self.what = what


def validate_data(energy: nn.Module, data: Tensor) -> None:
    """Raise ValueError if ``data`` (n, *event) is not finite floating data the energy accepts."""
    if not isinstance(data, Tensor) or not data.is_floating_point():
        raise ValueError("data must be a floating-point torch.Tensor of shape (n, *event)")
    if data.dim() < 2 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (n, *event) with n >= 1, got {tuple(data.shape)}")
    if not torch.isfinite(data).all():
        bad = int((~torch.isfinite(data)).flatten(1).any(1).sum())
        raise ValueError(f"data contains NaN or infinite values in {bad} sample(s); clean them first")
    dim = getattr(energy, "dim", None)
    if isinstance(dim, int) and data.dim() == 2 and data.shape[1] != dim:
        raise ValueError(f"data has dimension {data.shape[1]} but the energy expects {dim}")
    try:
        with torch.no_grad():
            u = energy(data[:2])
    except RuntimeError as exc:
        raise ValueError(f"the energy cannot be evaluated on data of shape {tuple(data.shape)}: {exc}") from exc
    if u.shape != (min(2, data.shape[0]),):
        raise ValueError(f"the energy must return one value per sample; got shape {tuple(u.shape)}")


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name`` (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def exact_log_z(energy: nn.Module) -> float | None:
    """The energy's closed-form log Z (its ``log_z()`` method), or None."""
    log_z = getattr(energy, "log_z", None)
    if not callable(log_z):
        return None
    with torch.no_grad():
        return float(log_z())


def initial_sampler(energy: nn.Module):
    """The energy's exact sampler of its initial model: ``sample_initial`` (e.g. a confined MLP at
    initialisation) or ``sample`` (closed-form models), else None."""
    return getattr(energy, "sample_initial", None) or getattr(energy, "sample", None)


def initial_log_z(energy: nn.Module) -> float:
    """log Z of the energy's initial model: ``initial_log_z()``, else the closed-form ``log_z()``, else 0
    (log-Z estimates are then relative to the initial model's)."""
    initial = getattr(energy, "initial_log_z", None)
    if callable(initial):
        return float(initial())
    return exact_log_z(energy) or 0.0


def check_log_z0(log_z0: object) -> float:
    """``log_z0`` as a finite float, or a ValueError: every log Z estimate is log_z0 plus a log mean weight, so a
    NaN or infinite log_z0 would make them all NaN or infinite."""
    try:
        value = float(log_z0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(log_z0, (bool, str, bytes)) or not math.isfinite(value):
        raise ValueError(
            f"log_z0 must be a finite number (log Z of the initial model in nats), got {log_z0!r}; "
            "pass its exact value, or None to take it from the energy"
        )
    return value


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


def check_values(
    step: int,
    bounded: dict[str, Tensor],
    finite: dict[str, Tensor],
    bound: float = DIVERGENCE_BOUND,
    coll: Collective = LOCAL,
    replicated: bool = False,
) -> None:
    """Raise :class:`DivergenceError` at iteration ``step``, on every process alike, if any process holds a
    non-finite value, or a ``bounded`` one beyond ``bound`` (``replicated``: equal on every process)."""
    worst = worst_values({**bounded, **finite})
    check_worst(step, list(bounded), list(finite), worst if replicated else coll.max(worst), bound)
