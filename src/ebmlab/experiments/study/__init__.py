"""The study skeleton every experiment command fills in: the output directory and its recorded settings,
the (variant, seed) grid of runs with reuse on ``--resume``, the shared options, and the summary.

Safety rules (what a finished run is worth more than the next command):

- a non-empty ``--out`` is refused unless ``--resume`` (continue what is there) or ``--overwrite``
  (delete the study's own files first: ``study.json``, ``metrics.json``, ``runs/``, ``checkpoints/``
  and PNGs; nothing else);
- ``study.json`` records the full settings; ``--resume`` under other settings is refused with one line
  naming the fields, except a larger ``iters`` (said, and the finished runs continue from their
  checkpoints);
- every run file records the settings it was made with; a damaged one is named, never used;
- temporary files of a write killed midway (``.name.XXXX.tmp``) are removed at the next start.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ...distributed import LOCAL, Collective
from ...errors import DivergenceError
from ...io import read_json, write_json
from ...sampling.kernels import Move
from ...training import NegativePhase, negative_phase
from ...training.checkpoint import flatten, settings_diff
from .args import (
    DEVICES,
    add_device_arg,
    add_method_args,
    add_output_args,
    add_walker_args,
    int_list,
    name_list,
    resolve_device,
)
from .context import RunContext

STUDY_FILE = "study.json"
EXTENDABLE = ("iters",)  # settings --resume may raise: the runs continue from their checkpoints


def study_phase(method: str, cfg: Any, step_size: float, n_steps: int = 1, **fields: Any) -> NegativePhase:
    """The negative phase of ``method`` from a study config's walker settings: ``n_steps`` steps of
    ``cfg.kernel`` with step size ``step_size`` per update; for Jarzynski ``cfg.resampler``,
    ``cfg.ess_threshold`` and ``cfg.cess_target``; for CD ``cfg.cd_reset_every``; plus ``fields``."""
    overrides = dict(move=Move(cfg.kernel, step_size, n_steps=n_steps), **fields)
    if method == "jarzynski":
        overrides.update(resampler=cfg.resampler, ess_threshold=cfg.ess_threshold, cess_target=cfg.cess_target)
    if method == "cd":
        overrides["reset_every"] = cfg.cd_reset_every
    return negative_phase(method, **overrides)


def _clear(out: Path) -> None:
    for name in (STUDY_FILE, "metrics.json"):
        (out / name).unlink(missing_ok=True)
    for name in ("runs", "checkpoints"):
        shutil.rmtree(out / name, ignore_errors=True)
    for png in out.glob("*.png"):
        png.unlink()


def prepare_out(out: Path, study: str, config: dict[str, Any], resume: bool, overwrite: bool) -> list[str]:
    """Check ``out`` against the rules above and record ``config``; returns notes for the console."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a directory: choose a directory")
    notes: list[str] = []
    recorded = out / STUDY_FILE
    for stale in (*out.glob(".*.tmp"), *out.glob("*/.*.tmp")):  # left by a write killed midway
        stale.unlink()
    if out.is_dir() and any(out.iterdir()):
        if overwrite:
            _clear(out)
        elif not resume:
            raise ValueError(
                f"--out {str(out)!r} already holds files: pass --resume to continue its runs, --overwrite to "
                "replace this study's results, or choose another directory"
            )
        elif recorded.exists():
            saved = read_json(recorded, "study settings file")
            if not isinstance(saved, dict) or saved.get("study") != study or "config" not in saved:
                raise ValueError(f"{str(recorded)!r} does not describe an `ebmlab {study}` study: use another --out")
            notes = check_config(saved["config"], config)
        else:
            raise ValueError(
                f"--out {str(out)!r} has no {STUDY_FILE}: it was not written by this version of `ebmlab {study}`; "
                "use another --out (or --overwrite)"
            )
    try:
        write_json({"study": study, "config": config}, recorded)
    except OSError as exc:
        raise ValueError(f"cannot write into --out {str(out)!r}: {exc.strerror or exc}") from None
    return notes


def check_config(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Refuse other settings (naming them); a larger value of an extendable one (at any depth: ``iters`` or
    ``training.iters``) is allowed and said."""
    notes, diff = [], []
    before, now = flatten(saved), flatten(current)
    for field in settings_diff(saved, current, "recorded"):
        name = field.split(" ", 1)[0]
        old, new = before.get(name), now.get(name)
        if name.rsplit(".", 1)[-1] in EXTENDABLE and isinstance(old, int) and isinstance(new, int) and new > old:
            notes.append(f"{name} extended from {old} to {new}: the runs continue")
        else:
            diff.append(field)
    if diff:
        raise ValueError(
            "--resume with other settings than the recorded ones: "
            + "; ".join(diff)
            + ". Resume with the recorded settings, or start afresh in another --out"
        )
    return notes


def _reusable(result: Any, path: Path, config: dict[str, Any]) -> bool:
    """Whether a run file can stand for the run under ``config`` (False: redo it, continuing its checkpoint)."""
    if not isinstance(result, dict) or "status" not in result or "config" not in result:
        raise ValueError(f"{str(path)!r} is not a complete run file: delete it to redo that run")
    check_config(result["config"], config)
    return result["config"] == config


def run_or_reuse(
    done: Path,
    run: Callable[[], dict[str, Any]],
    resume: bool,
    label: str,
    config: dict[str, Any],
    write: bool = True,
) -> dict[str, Any]:
    """One run's result, recorded with ``config``: read back from ``done`` when resuming a run finished
    under the same settings, else ``run()`` (which continues from its checkpoint when resuming).  A
    :class:`DivergenceError` becomes ``{"status": "diverged", "error", "step"}`` and is reported."""
    if resume and done.exists() and _reusable(result := read_json(done, "run file"), done, config):
        return result
    try:
        result = run()
    except DivergenceError as exc:
        result = {"status": "diverged", "error": str(exc), "step": exc.step}
        if write:
            tqdm.write(f"{label}: {exc}")
    result["config"] = config
    if write:
        write_json(result, done)
    return result


def run_grid(
    study: str,
    config: dict[str, Any],
    variants: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    run_one: Callable[[str, RunContext], dict[str, Any]],
    *,
    resume: bool,
    overwrite: bool = False,
    progress: bool | None = None,
    collective: Collective = LOCAL,
    device: torch.device | str = "cpu",
    data_dir: str | None = None,
    compile: bool = False,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Prepare ``out`` and run ``run_one(variant, context)`` for every pair, with the run's
    :class:`RunContext` (its seed, ``out``, its checkpoint file, and the remaining arguments), reusing
    finished runs on ``resume``; returns the results by variant and seed, and the notes of
    :func:`prepare_out`.  Under torchrun every process calls this; only the main one writes."""
    main = collective.is_main
    notes = collective.agree(lambda: prepare_out(out, study, config, resume, overwrite) if main else [])
    runs: dict[str, dict[str, Any]] = {v: {} for v in variants}
    disable = True if not main else None if progress is None else not progress
    shared: dict[str, Any] = dict(
        out=out, resume=resume, device=torch.device(device), progress=progress, data_dir=data_dir,
        collective=collective, compile=compile,
    )  # fmt: skip
    for variant in variants:
        for seed in tqdm(seeds, desc=variant, disable=disable, leave=False):
            name = f"{variant}_seed{seed}"
            context = RunContext(seed, checkpoint=out / "checkpoints" / f"{name}.pt", **shared)
            runs[variant][str(seed)] = run_or_reuse(
                out / "runs" / f"{name}.json",
                lambda: run_one(variant, context),  # noqa: B023 - called at once
                resume,
                f"{variant} seed {seed}",
                config,
                write=main,
            )
    return runs, notes


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


def eval_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator (on ``device``) of an evaluation's own draws at training step ``step`` of the run with seed
    ``seed``: seeded apart from every training stream (those are seeded by the run seeds), so evaluating never
    changes training and a resumed run evaluates identically."""
    return torch.Generator(device).manual_seed(1_000_003 * (seed + 1) + step)


def exit_code(results: Iterable[dict[str, Any]]) -> int:
    """0 when every run finished, 1 when any diverged."""
    return 0 if all(r.get("status") == "ok" for r in results) else 1


__all__ = [
    "DEVICES",
    "STUDY_FILE",
    "RunContext",
    "add_device_arg",
    "add_method_args",
    "add_output_args",
    "add_walker_args",
    "check_config",
    "eval_generator",
    "exit_code",
    "int_list",
    "name_list",
    "prepare_out",
    "resolve_device",
    "run_grid",
    "run_or_reuse",
    "seed_summary",
    "study_phase",
]
