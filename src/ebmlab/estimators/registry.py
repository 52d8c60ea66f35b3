"""Every estimator behind one calling convention: ``ESTIMATORS[name](problem, **options) -> Estimate``.

A :class:`Problem` is what a normalizing-constant problem gives: the unnormalised target log density,
J normalised proposals, exact draws from the target (x) and/or from the proposals (y, pooled in
proposal order), optionally a leading batch of independent problems, and a generator for the
estimators that draw (AIS).  Every entry estimates the target's log Z in nats, shape (*batch,), as an
:class:`Estimate` (se, ess, converged, iterations, diagnostics) whose ``method`` is the entry's name.
With J > 1 the one-proposal estimators use the proposals' mixture psi = sum_j (N_j / N2) q_j: IS
against psi is deterministic-mixture MIS, NCE against psi equals RLR with every proposal fixed (E8).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import torch
from torch import Tensor

from ..errors import check_int
from ..sampling.kernels import Move
from .ais import ais
from .bootstrap import bootstrap_se
from .estimate import Estimate
from .mis import mis
from .noise import Proposal
from .rlr import rlr
from .two_sample import bridge, importance_sampling, nce_log_z, reciprocal_is
from .validation import as_counts


@dataclass(frozen=True)
class Problem:
    """One (or a batch of) normalizing-constant problem(s), as every :data:`ESTIMATORS` entry reads it.

    log_phi: unnormalised target log density, (*batch, N, *event) -> (*batch, N) nats (differentiable
        in x for AIS).
    proposals: J normalised proposals (e.g. :class:`GaussianNoise`).
    x: (*batch, N1, *event) exact target draws, or None; y: (*batch, N2, *event) proposal draws pooled
        in proposal order, or None.  counts: draws per proposal (default: all N2 from the one proposal).
    event_dim: number of trailing event dimensions (1 for vectors).
    generator: random stream of the estimators that draw (AIS).
    Log densities are evaluated once, without gradient, and cached.
    """

    log_phi: Callable[[Tensor], Tensor]
    proposals: Sequence[Proposal]
    x: Tensor | None = None
    y: Tensor | None = None
    counts: Sequence[int] | None = None
    event_dim: int = 1
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if not callable(self.log_phi):
            raise TypeError(f"log_phi must be a callable x -> log density, got {type(self.log_phi).__name__}")
        props = tuple(self.proposals)
        if not props or not all(hasattr(q, "log_prob") and hasattr(q, "sample") for q in props):
            raise TypeError("proposals must be a non-empty sequence of distributions with log_prob(x) and sample(n, g)")
        object.__setattr__(self, "proposals", props)
        check_int("event_dim", self.event_dim, 0)
        if self.x is None and self.y is None:
            raise ValueError("a Problem needs draws: target draws x, proposal draws y, or both")
        if any(not isinstance(t, Tensor) for t in (self.x, self.y) if t is not None):
            raise TypeError("x and y must be tensors of draws (*batch, N, *event)")
        shapes = [t.shape for t in (self.x, self.y) if t is not None]
        if any(len(s) < self.event_dim + 1 for s in shapes):
            raise ValueError(f"draws must have shape (*batch, N, *event) with {self.event_dim} event dims")
        cut = -self.event_dim - 1
        if len({(s[:cut], s[len(s) - self.event_dim :]) for s in shapes}) > 1:
            raise ValueError(f"x and y must share batch and event shapes, got {[tuple(s) for s in shapes]}")
        if self.y is not None:
            n2 = self.y.shape[cut]
            default = [n2] if len(props) == 1 else None
            chosen = self.counts if self.counts is not None else default
            if chosen is None:
                raise ValueError(f"with {len(props)} proposals, counts (draws per proposal, in pooled order) is needed")
            c = as_counts(chosen, len(props), n2)
            object.__setattr__(self, "counts", tuple(c.tolist()))

    @property
    def batch_shape(self) -> torch.Size:
        draws = self.x if self.x is not None else self.y
        assert draws is not None  # checked in __post_init__
        return draws.shape[: draws.dim() - self.event_dim - 1]

    def draws(self, which: str) -> Tensor:
        """x ('target') or y ('proposal') draws; a clear error when the problem has none."""
        t = self.x if which == "target" else self.y
        if t is None:
            name = "x" if which == "target" else "y"
            raise ValueError(f"this estimator needs {which} draws: build the Problem with {name}=...")
        return t

    def log_psi(self, z: Tensor) -> Tensor:
        """Log density of the proposals' mixture psi = sum_j (N_j / N2) q_j at z (*, N, *event)."""
        log_q = torch.stack([q.log_prob(z) for q in self.proposals], -2).double()
        if len(self.proposals) == 1:
            return log_q[..., 0, :]
        counts = self.counts or (1,) * len(self.proposals)
        log_w = torch.tensor(counts, dtype=torch.float64, device=log_q.device).log() - math.log(sum(counts))
        return torch.logsumexp(log_q + log_w[:, None], -2)

    def _eval(self, fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.as_tensor(fn(z)).double()

    @cached_property
    def log_phi_x(self) -> Tensor:
        return self._eval(self.log_phi, self.draws("target"))

    @cached_property
    def log_phi_y(self) -> Tensor:
        return self._eval(self.log_phi, self.draws("proposal"))

    @cached_property
    def log_q_x(self) -> Tensor:
        """(*batch, J, N1) every proposal at the target draws."""
        return torch.stack([self._eval(q.log_prob, self.draws("target")) for q in self.proposals], -2)

    @cached_property
    def log_q_y(self) -> Tensor:
        """(*batch, J, N2) every proposal at the proposal draws."""
        return torch.stack([self._eval(q.log_prob, self.draws("proposal")) for q in self.proposals], -2)

    @cached_property
    def log_psi_x(self) -> Tensor:
        return self._eval(self.log_psi, self.draws("target"))

    @cached_property
    def log_psi_y(self) -> Tensor:
        return self._eval(self.log_psi, self.draws("proposal"))

    def two_sample(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(log phi(x), log psi(x), log phi(y), log psi(y)): the inputs of bridge and NCE."""
        return self.log_phi_x, self.log_psi_x, self.log_phi_y, self.log_psi_y


def _rlr(problem: Problem, **options) -> Estimate:
    """Target (sampled when x is given) and the J proposals with log Z = 0 held fixed; target's log Z."""
    j = len(problem.proposals)
    y = problem.draws("proposal")
    n1 = 0 if problem.x is None else problem.x.shape[-problem.event_dim - 1]
    known = {k + 1: 0.0 for k in range(j)}
    assert problem.counts is not None  # set with the proposal draws
    counts = [n1, *problem.counts]
    if options.get("chunk_size") is not None:  # evaluate the densities chunk by chunk, never all at once
        z = y if problem.x is None else torch.cat([problem.x, y], -problem.event_dim - 1)
        take = (slice(None),) * len(problem.batch_shape)

        def log_q(start: int, stop: int) -> Tensor:
            index = (*take, slice(start, stop))  # a tuple first: z[*take, ...] is Python >= 3.11 syntax
            part = z[index]
            with torch.no_grad():
                rows = [problem.log_phi(part), *(q.log_prob(part) for q in problem.proposals)]
            return torch.stack([torch.as_tensor(r).double() for r in rows], -2)

        return rlr(log_q, counts, known, **options).state(0)
    phi = problem.log_phi_y if problem.x is None else torch.cat([problem.log_phi_x, problem.log_phi_y], -1)
    q = problem.log_q_y if problem.x is None else torch.cat([problem.log_q_x, problem.log_q_y], -1)
    return rlr(torch.cat([phi.unsqueeze(-2), q], -2), counts, known, **options).state(0)


def _ais(
    problem: Problem, *, move: Move | None = None, betas: int | Tensor = 100, reverse: bool = False, **options
) -> Estimate:
    """AIS from the proposal mixture (forward, from y) or from the target (reverse, from x), one run
    per batch item with the problem's generator; ``move``: the kernel, its step size and steps per temperature."""
    draws = problem.draws("target" if reverse else "proposal")
    if problem.generator is None:
        raise ValueError("AIS draws random numbers: build the Problem with generator=torch.Generator()...")
    runs = [
        ais(
            lambda z: -problem.log_psi(z),
            lambda z: -problem.log_phi(z),
            d,
            0.0,
            betas,
            move=move,
            generator=problem.generator,
            reverse=reverse,
            **options,
        )
        for d in draws.reshape(-1, *draws.shape[len(problem.batch_shape) :])
    ]
    shape = problem.batch_shape
    stack = lambda name: torch.stack([getattr(r, name) for r in runs]).reshape(shape)
    return Estimate(
        log_z=stack("log_z"),
        se=stack("se"),
        method=runs[0].method,
        ess=stack("ess"),
        diagnostics={
            "log_w": torch.stack([r.diagnostics["log_w"] for r in runs]).reshape(*shape, -1),
            "acceptance": torch.tensor([r.diagnostics["acceptance"] for r in runs]).reshape(shape),
        },
    )


def _mis(weights: str) -> Callable[..., Estimate]:
    return lambda p, **o: mis(p.log_phi_y, p.log_q_y, p.counts, weights=weights, **o)


def _bridge(alpha: str) -> Callable[..., Estimate]:
    return lambda p, **o: bridge(*p.two_sample(), alpha=alpha, **o)


_ENTRIES: dict[str, Callable[..., Estimate]] = {
    "is": lambda p, **o: importance_sampling(p.log_phi_y, p.log_psi_y, **o),
    "ris": lambda p, **o: reciprocal_is(p.log_phi_x, p.log_psi_x, **o),
    "bridge-optimal": _bridge("optimal"),
    "bridge-geometric": _bridge("geometric"),
    "bridge-power": _bridge("power"),
    "mis-standard": _mis("standard"),
    "mis-deterministic-mixture": _mis("deterministic-mixture"),
    "rlr": _rlr,
    "nce": lambda p, **o: nce_log_z(*p.two_sample(), **o),
    "ais": lambda p, **o: _ais(p, **o),
    "ais-reverse": lambda p, **o: _ais(p, reverse=True, **o),
}


def _named(name: str, fn: Callable[..., Estimate]) -> Callable[..., Estimate]:
    def estimate(problem: Problem, *, bootstrap: int | None = None, **options) -> Estimate:
        if not isinstance(problem, Problem):
            raise TypeError(f"{name}: expected an ebmlab.estimators.Problem, got {type(problem).__name__}")
        est = replace(fn(problem, **options), method=name)
        if bootstrap is None:
            return est
        return replace(est, se_bootstrap=bootstrap_se(name, fn, problem, est, bootstrap, options))

    estimate.__name__ = estimate.__qualname__ = name.replace("-", "_")
    estimate.__doc__ = (
        f"The {name!r} estimator on a Problem; options go to the underlying function.  ``bootstrap=B`` adds "
        "``se_bootstrap``: the spread of log Z over B replicates resampled within each sample (:mod:`.bootstrap`)."
    )
    return estimate


ESTIMATORS: dict[str, Callable[..., Estimate]] = {name: _named(name, fn) for name, fn in _ENTRIES.items()}
"""Every estimator preset by name, each called as ``ESTIMATORS[name](problem, **options) -> Estimate``."""


def get_estimator(name: str) -> Callable[..., Estimate]:
    """Look up an estimator by name; a clear ValueError lists the valid names."""
    try:
        return ESTIMATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}") from None
