"""Files: one atomic writer for every artefact (checkpoints, JSON, tensors, figures) and readers that
turn a damaged file into one clear error.

:func:`atomic_write` writes to a temporary file in the target's directory, flushes and fsyncs it,
gives it the permissions a plain ``open`` would (the process umask), renames it over the target and
fsyncs the directory: a crash leaves either the old file or the new one, never a torn one, and no
temporary file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
    """Create or replace ``path`` atomically with what ``write(file)`` writes (binary mode)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def fingerprint(t: torch.Tensor) -> str:
    """Shape, dtype and a SHA-256 prefix of a tensor's bytes: identifies a data set in checkpoints."""
    raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return f"{tuple(t.shape)} {t.dtype} {hashlib.sha256(raw).hexdigest()[:16]}"


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically (tensors and plain containers)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` on the CPU; a missing, truncated or foreign file raises one
    ValueError that names the file and says what to do."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no {what} at {str(path)!r}")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types (RuntimeError, EOFError, UnpicklingError, ...)
        text = str(exc).strip()
        reason = type(exc).__name__ if not text or "weights_only" in text else text.splitlines()[0][:120]
        raise ValueError(
            f"{str(path)!r} is not a readable ebmlab {what} (truncated, empty or written by something else: "
            f"{reason}); delete it to start that run afresh"
        ) from None


def _finite(obj: Any) -> Any:
    """Replace non-finite floats by None so the JSON stays standard."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write standard JSON (NaN/inf as null) atomically."""
    text = json.dumps(_finite(obj), indent=1)
    atomic_write(path, lambda f: f.write(text.encode()))


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write rows (dicts) as CSV atomically: one column per key seen, in first-seen order; lists as JSON."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))


def read_json(path: str | os.PathLike, what: str = "result file") -> Any:
    """Parse a JSON file; a missing or damaged one raises one ValueError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ValueError(f"no {what} at {str(path)!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable {what} ({exc}); delete it to redo that run") from None


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically."""
    atomic_write(path, lambda f: fig.savefig(f, dpi=dpi, format="png"))
