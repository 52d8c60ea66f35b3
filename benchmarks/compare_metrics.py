"""Compare two metrics.json files number by number (bit for bit), ignoring timings.

Usage: python benchmarks/compare_metrics.py BEFORE/metrics.json AFTER/metrics.json [--rename OLD=NEW ...]

Prints every leaf that differs (path, before, after) and the number of numbers compared; exits 1 when any
differs.  ``--rename OLD=NEW`` moves the value at key path OLD of BEFORE to NEW before comparing, for
settings or results that a refactor moved.  Paths are keys joined by "/"; "*" matches every key at its
level, and the k-th "*" of NEW takes the key the k-th "*" of OLD matched, e.g.
``runs/*/config/steps_per_update=runs/*/config/move/n_steps``.  A path matching nothing is an error, so a
rename cannot silently compare nothing.

Keys naming a timing (containing "time", "wall", "seconds" or "cpu_s") and the recorded device are skipped,
as are file paths (strings ending in .png / .pt / .json), which name the output directory.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

SKIPPED = ("time", "wall", "seconds", "cpu_s", "device")


def _skipped(key: str) -> bool:
    return any(word in key.lower() for word in SKIPPED)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def differences(before: Any, after: Any, path: str = "") -> tuple[list[str], int]:
    """(the paths where ``before`` and ``after`` differ, described; how many numbers were compared)."""
    if isinstance(before, dict) and isinstance(after, dict):
        diffs, n = [], 0
        for key in sorted(set(before) | set(after)):
            if _skipped(key):
                continue
            if key not in before or key not in after:
                diffs.append(f"{path}/{key}: only in {'after' if key in after else 'before'}")
                continue
            d, k = differences(before[key], after[key], f"{path}/{key}")
            diffs, n = diffs + d, n + k
        return diffs, n
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{path}: lengths {len(before)} != {len(after)}"], 0
        diffs, n = [], 0
        for i, (x, y) in enumerate(zip(before, after)):
            d, k = differences(x, y, f"{path}[{i}]")
            diffs, n = diffs + d, n + k
        return diffs, n
    if isinstance(before, str) and before.endswith((".png", ".pt", ".json")):
        return [], 0
    number = isinstance(before, (int, float)) and not isinstance(before, bool)
    return ([] if _same(before, after) else [f"{path}: {before!r} != {after!r}"]), int(number)


def _matches(tree: Any, keys: list[str]) -> list[tuple[list[str], Any]]:
    """Every (concrete key path, parent dict) of ``tree`` matching ``keys`` ("*": any key)."""
    if not isinstance(tree, dict):
        return []
    names = list(tree) if keys[0] == "*" else [keys[0]] if keys[0] in tree else []
    if len(keys) == 1:
        return [([k], tree) for k in names]
    return [([k, *path], parent) for k in names for path, parent in _matches(tree[k], keys[1:])]


def rename(tree: Any, old: str, new: str) -> int:
    """Move every value at key path ``old`` of ``tree`` to ``new`` (in place); returns how many moved.  Each
    "*" of ``new`` takes the key the same-numbered "*" of ``old`` matched."""
    old_keys, new_keys = old.split("/"), new.split("/")
    if old_keys.count("*") != new_keys.count("*"):
        raise ValueError(f"--rename {old}={new}: both paths need the same number of '*'")
    found = _matches(tree, old_keys)
    for path, parent in found:
        value = parent.pop(path[-1])
        stars = iter(k for k, pattern in zip(path, old_keys) if pattern == "*")
        target = tree
        concrete = [next(stars) if k == "*" else k for k in new_keys]
        for key in concrete[:-1]:
            target = target.setdefault(key, {})
        target[concrete[-1]] = value
    return len(found)


def main(argv: list[str]) -> int:
    files = [a for a in argv if not a.startswith("--rename")]
    renames = [a.split("=", 1)[1] for a in argv if a.startswith("--rename=")]
    renames += [argv[i + 1] for i, a in enumerate(argv) if a == "--rename" and i + 1 < len(argv)]
    files = [a for a in files if a not in renames]
    if len(files) != 2 or any("=" not in r for r in renames):
        print(__doc__.strip().splitlines()[2])
        return 2
    before, after = (json.loads(Path(p).read_text()) for p in files)
    for spec in renames:
        old, new = spec.split("=", 1)
        if not rename(before, old, new):
            print(f"--rename {spec}: no key path {old!r} in {files[0]}")
            return 2
    diffs, n = differences(before, after)
    for d in diffs:
        print(d)
    print(f"{n} numbers compared, {len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
