"""Compare two metrics.json files number by number (bit for bit), ignoring timings.

Usage: python benchmarks/compare_metrics.py BEFORE/metrics.json AFTER/metrics.json

Prints every leaf that differs (path, before, after) and the number of numbers compared; exits 1 when any
differs.  Keys naming a timing (containing "time", "wall" or "seconds") and the recorded device are skipped,
as are file paths (strings ending in .png / .pt / .json), which name the output directory.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

SKIPPED = ("time", "wall", "seconds", "device")


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


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2])
        return 2
    before, after = (json.loads(Path(p).read_text()) for p in argv)
    diffs, n = differences(before, after)
    for d in diffs:
        print(d)
    print(f"{n} numbers compared, {len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
