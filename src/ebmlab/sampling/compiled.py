"""The compiled Langevin step: energy, input gradient, move and log-weight increment as one
``torch.compile``d graph per energy and shape.

The step function is pure (positions, cached gradient and energy, and the noise in; the new
positions, energy, gradient and increment out): the noise is drawn outside, eagerly, from the
caller's generator, so a compiled run consumes exactly the random numbers of an eager one and
differs from it only by floating-point rounding (the compiler fuses and reorders the arithmetic).
The input gradient is taken with :func:`torch.func.grad_and_value`, which the compiler traces
whole; the step runs under ``torch.no_grad`` so no backward graph through the parameters is built.

Compilation happens at the first call for each energy object and walker shape (tens of seconds on
a CPU); a changed parameter value does not recompile.  Compiling needs a working C++ compiler on
CPU (Triton on CUDA); without one the first call raises a RuntimeError that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
from torch import Tensor

StepFn = Callable[..., tuple[Tensor, Tensor, Tensor, "Tensor | None"]]


def func_energy_and_grad(energy: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Energy (N,) and input-gradient (N, *event) by :func:`torch.func.grad_and_value` (traceable)."""

    def total(z: Tensor) -> tuple[Tensor, Tensor]:
        u = energy(z)
        return u.sum(), u

    g, (_, u) = torch.func.grad_and_value(total, has_aux=True)(x)
    return u, g


@cache
def _compiled(fn: StepFn) -> StepFn:
    return torch.compile(fn, dynamic=False)


def run_compiled(fn: StepFn, *args) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``fn(*args)`` through its compiled version (built once per function; the compiler caches one
    graph per energy and shape), without autograd; a failure to compile is a RuntimeError naming
    the cause."""
    try:
        with torch.no_grad():
            return _compiled(fn)(*args)
    except ValueError:
        raise
    except Exception as exc:  # the compiler's own errors (no C++ compiler, unsupported operation)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RuntimeError(
            f"compile=True: torch.compile could not build the Langevin step ({type(exc).__name__}: {first}). "
            "It needs a working C++ compiler on CPU (Triton on CUDA) and an energy made of traceable torch "
            "operations; run without compile (drop --compile)"
        ) from exc


def compile_available() -> bool:
    """Whether torch.compile can build and run a small graph here (a C++ compiler is present)."""
    return _probe()


@cache
def _probe() -> bool:
    try:
        return bool(torch.compile(lambda t: (t * 2.0).sum())(torch.ones(3)) == 6.0)
    except Exception:
        return False
