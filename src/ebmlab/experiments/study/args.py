"""The options every study shares: seeds and names as argparse types, --out/--resume/--overwrite, --methods and
--seeds, the weighted walkers' options, and --device."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ...sampling.resampling import RESAMPLERS
from ...sampling.smc import KERNELS
from ...training import METHODS

SEED_MAX = 2**63 - 1


def int_list(text: str) -> list[int]:
    """Parse "0,1,2" into [0, 1, 2] (argparse type): non-negative integers that fit a 64-bit seed."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    bad = [v for v in values if not 0 <= v <= SEED_MAX]
    if bad:
        raise argparse.ArgumentTypeError(f"seeds must lie in [0, 2**63 - 1], got {bad}")
    return values


def name_list(choices: Iterable[str]) -> Callable[[str], list[str]]:
    """argparse type parsing "a,b" into names from ``choices``, with a clear error for unknown ones."""
    allowed = list(choices)

    def parse(text: str) -> list[str]:
        names = [v.strip() for v in text.split(",") if v.strip()]
        bad = [n for n in names if n not in allowed]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown name(s) {bad or text!r}; choose from {allowed}")
        return names

    return parse


def add_output_args(p: argparse.ArgumentParser, default_out: str) -> None:
    """--out, --resume, --overwrite, --no-progress: the options every study shares."""
    p.add_argument("--out", type=Path, default=Path(default_out), help="output directory")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the runs in --out (same settings)")
    mode.add_argument("--overwrite", action="store_true", help="delete this study's results in --out first")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_method_args(p: argparse.ArgumentParser) -> None:
    """--methods (a subset of the training methods, all by default) and --seeds (None = the preset's)."""
    p.add_argument(
        "--methods",
        type=name_list(METHODS),
        default=list(METHODS),
        help="comma-separated subset of " + ",".join(METHODS),
    )
    p.add_argument("--seeds", type=int_list, default=None, help="comma-separated seeds (default: preset's)")


def add_walker_args(p: argparse.ArgumentParser) -> None:
    """--resampler, --ess-threshold, --kernel, --cess-target: the weighted walkers' options (None = preset's)."""
    p.add_argument("--resampler", choices=sorted(RESAMPLERS), default=None)
    p.add_argument("--ess-threshold", type=float, default=None, help="resample when ESS/N < this, in (0, 1]")
    p.add_argument("--kernel", choices=sorted(KERNELS), default=None, help="walker kernel (default ula)")
    p.add_argument(
        "--cess-target",
        type=float,
        default=None,
        help="ESS-controlled updates for jarzynski: shorten each parameter update until the walkers' "
        "conditional ESS is at least this, in (0, 1] (default off)",
    )


DEVICES = ("auto", "cpu", "cuda")


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """--device {auto,cpu,cuda}: where models, walkers and data live (auto: CUDA when available)."""
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="auto (default): CUDA when available, else CPU; under torchrun each process takes the GPU of its "
        "local rank. Runs are reproducible bit for bit on CPU only",
    )


def resolve_device(name: str) -> torch.device:
    """The ``torch.device`` for a --device value; under torchrun a CUDA process uses ``cuda:LOCAL_RANK``."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}: choose from {list(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda: this machine has no usable CUDA device; use --device cpu (or auto)")
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    if rank >= torch.cuda.device_count():
        raise ValueError(
            f"--device cuda: local rank {rank} has no GPU ({torch.cuda.device_count()} visible): "
            "start at most one process per GPU"
        )
    return torch.device("cuda", rank)
