"""Printed warnings for the runs of a study whose log Z estimate is not a value (a collapsed walker genealogy,
:func:`ebmlab.uncertainty.collapse_reason`), from the ``log_z_reliable*`` fields of their metrics."""

from __future__ import annotations

from typing import Any

from ..uncertainty import POPULATIONS


def reliability_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The ``log_z_reliable*`` and ``log_z_unreliable_reason*`` entries of a trainer summary."""
    return {k: v for k, v in summary.items() if k.startswith(("log_z_reliable", "log_z_unreliable"))}


def reliability_warnings(runs: dict[str, dict[Any, dict[str, Any]]]) -> list[str]:
    """One ``WARNING`` line per (method, seed, population) whose log Z was marked unreliable, saying why and what
    to change; empty when every run's estimate is reliable."""
    out = []
    for method, by_seed in runs.items():
        for seed, run in sorted(by_seed.items(), key=lambda kv: str(kv[0])):
            for suffix in POPULATIONS:
                reason = run.get(f"log_z_unreliable_reason{suffix}")
                if reason is not None:
                    out.append(f"WARNING {method} seed {seed}: {reason}")
    return out
