"""Checkpoint files: atomic writes (:mod:`ebmlab.io`), clear errors for damaged files, and the check that
a checkpoint was written with the settings it is resumed under."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from ..io import load_torch, save_torch
from ..sampling.kernels import LEGACY_MOVE_KEYWORDS, Move


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save ``obj`` to ``path`` atomically: a crash leaves the previous file intact."""
    save_torch(obj, path)


def load(path: str | os.PathLike) -> Any:
    """Load a checkpoint written by :func:`save_atomic` (tensors and plain containers only); a missing or
    damaged file raises a ValueError naming it."""
    state = load_torch(path, "checkpoint")
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} is not an ebmlab checkpoint (it holds a {type(state).__name__})")
    return state


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of dotted keys (``{"phase": {"move": {"n_steps": 5}}}`` ->
    ``{"phase.move.n_steps": 5}``), the names settings differences are reported under."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def settings_diff(saved: dict[str, Any], current: dict[str, Any], label: str = "checkpoint") -> list[str]:
    """'field (<label> X, now Y)' for every setting that differs (nested dicts compared field by field)."""
    a, b = flatten(saved), flatten(current)
    return [
        f"{k} ({label} {a.get(k, 'absent')!r}, now {b.get(k, 'absent')!r})"
        for k in sorted(a.keys() | b.keys())
        if a.get(k, "absent") != b.get(k, "absent")
    ]


def nested_move(state: dict[str, Any], key: str = "phase") -> dict[str, Any]:
    """``state`` with the config recorded under ``settings[key]`` in today's form: checkpoints written before
    the configs took a :class:`~ebmlab.sampling.smc.Move` recorded its fields flat (``steps_per_update`` for
    ``n_steps``; absent fields had their defaults)."""
    config = state.get("settings", {}).get(key)
    if not isinstance(config, dict) or "move" in config or not {"kernel", "step_size"} <= set(config):
        return state
    flat = {k: v for k, v in config.items() if k not in LEGACY_MOVE_KEYWORDS}
    move = asdict(Move()) | {LEGACY_MOVE_KEYWORDS[k]: v for k, v in config.items() if k in LEGACY_MOVE_KEYWORDS}
    if key == "phase":
        del move["compile"]  # not a checked setting of the trainer
    return state | {"settings": state["settings"] | {key: flat | {"move": move}}}


def check_settings(state: dict[str, Any], fmt: int, settings: dict[str, Any]) -> None:
    """Refuse a checkpoint of another format, or one written with other settings, naming the fields."""
    if state.get("format") != fmt:
        raise ValueError(
            f"the checkpoint has format {state.get('format', 'unversioned')!r} and this ebmlab reads format {fmt}: "
            "it was written by another version; rerun that run from the start (without --resume)"
        )
    diff = settings_diff(state["settings"], settings)
    if diff:
        raise ValueError(
            "the checkpoint was written with other settings: " + "; ".join(diff) + ". Resume with the settings "
            "it was written with, or start afresh in another output directory"
        )
