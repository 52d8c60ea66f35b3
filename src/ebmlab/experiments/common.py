"""Helpers shared by the experiment commands: option parsing, atomic JSON, run bookkeeping."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..io import read_json, write_json
from ..training import DivergenceError

__all__ = ["exit_code", "int_list", "name_list", "read_json", "run_or_reuse", "seed_summary", "write_json"]


def int_list(text: str) -> list[int]:
    """Parse "0,1,2" into [0, 1, 2] (argparse type)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def name_list(choices: Iterable[str]):
    """argparse type parsing "a,b" into names from ``choices``, with a clear error for unknown ones."""
    allowed = list(choices)

    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown name(s) {bad or text!r}; choose from {allowed}")
        return names

    return parse


def run_or_reuse(
    done: Path, run: Callable[[], dict[str, Any]], resume: bool, label: str, write: bool = True
) -> dict[str, Any]:
    """One run's result: read back from ``done`` (a finished run's JSON) when resuming, else ``run()``.

    A :class:`~ebmlab.training.DivergenceError` becomes ``{"status": "diverged", "error", "step"}`` and
    is reported on the console; the result is written to ``done`` (when ``write``: the main process).
    """
    if resume and done.exists():
        return read_json(done)
    try:
        result = run()
    except DivergenceError as exc:
        result = {"status": "diverged", "error": str(exc), "step": exc.step}
        if write:
            tqdm.write(f"{label}: {exc}")
    if write:
        write_json(result, done)
    return result


def seed_summary(results: Iterable[dict[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    """Over the finished ("ok") runs: their count and, per key present, its mean, min and max
    (flat keys ``<key>_mean``, ``<key>_min``, ``<key>_max``)."""
    ok = [r for r in results if r.get("status") == "ok"]
    out: dict[str, Any] = {"n_seeds": len(ok)}
    for key in keys:
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            out[f"{key}_mean"] = sum(vals) / len(vals)
            out[f"{key}_min"] = min(vals)
            out[f"{key}_max"] = max(vals)
    return out


def exit_code(results: Iterable[dict[str, Any]]) -> int:
    """0 when every run finished, 1 when any diverged."""
    return 0 if all(r.get("status") == "ok" for r in results) else 1
