"""Command-line entry point: ``ebmlab <experiment> [options]``.

Each experiment module defines ``configure_parser(parser)`` and ``main(args) -> int``; they are
imported only when their command runs, so ``ebmlab --help`` stays fast.

Expected failures (bad options, settings or files, permissions, --compile where nothing can compile, an
allocation beyond the machine's memory) end in one line on stderr, exit status 2 (1 for operating-system
and memory errors and diverged runs); set ``EBMLAB_TRACEBACK=1`` to see the traceback of a
``ValueError`` instead.

Under ``torchrun --nproc-per-node P -m ebmlab <experiment> ...`` the commands in ``DISTRIBUTED`` split
their walkers across the P processes (``args.collective``); the others refuse to run there.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "gmm": ("ebmlab.experiments.gmm", "Gaussian-mixture study: Jarzynski vs PCD vs CD"),
    "estimators": ("ebmlab.experiments.estimators", "normalizing-constant estimator experiments"),
    "mnist": ("ebmlab.experiments.mnist", "imbalanced-MNIST study: Jarzynski vs PCD vs CD"),
    "latent": ("ebmlab.experiments.latent", "latent-space EBM priors: short-run LEBM and DAMC"),
    "scaling": ("ebmlab.experiments.scaling", "where exact weights stop working: the digit study against dimension"),
    "lvm": ("ebmlab.experiments.lvm", "latent-variable models by maximum marginal likelihood (JALA-EM)"),
}
DISTRIBUTED = ("gmm", "mnist")  # commands that run under torchrun with walkers split across processes


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebmlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="EXPERIMENT", required=True)
    wanted = argv[0] if argv else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            importlib.import_module(module).configure_parser(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and args.command not in DISTRIBUTED:
        print(
            f"ebmlab {args.command}: error: this command runs in one process; under torchrun "
            f"(WORLD_SIZE={world}) use one of {list(DISTRIBUTED)}",
            file=sys.stderr,
        )
        return 2
    import torch.distributed as dist  # torch is imported only once a command runs

    from .distributed import init_from_env

    owns_group = not dist.is_initialized()
    try:
        _check_compile(args)
        args.collective = init_from_env(_backend(args))
        return importlib.import_module(COMMANDS[args.command][0]).main(args)
    except ValueError as exc:  # bad options, settings or files: a clear message, not a traceback
        if os.environ.get("EBMLAB_TRACEBACK"):
            raise
        print(f"ebmlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:  # an allocation too large for this machine: one line too
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if not isinstance(exc, MemoryError) and "allocate" not in first:
            raise
        print(
            f"ebmlab {args.command}: error: out of memory ({first}); use fewer walkers (--walkers, "
            "--log-z-walkers), less data or a smaller preset",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # permissions, full disk, a path that is not a directory...
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"ebmlab {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ebmlab {args.command}: interrupted; finished runs and checkpoints are kept (--resume)", file=sys.stderr)
        return 130
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _check_compile(args: argparse.Namespace) -> None:
    """--compile needs torch.compile to work here: refuse it up front, in one line, where it cannot."""
    if getattr(args, "compile", False):
        from .sampling.compiled import compile_available

        if not compile_available():
            raise ValueError(
                "--compile needs torch.compile, which cannot build code here (no working C++ compiler on CPU, "
                "or no Triton on CUDA); run without --compile"
            )


def _backend(args: argparse.Namespace) -> str | None:
    """NCCL when the command's --device resolves to a GPU (then this process's GPU, that of its local rank,
    becomes the current one), else the default (gloo)."""
    if getattr(args, "device", None) is None:
        return None
    import torch

    from .experiments.study import resolve_device

    device = resolve_device(args.device)
    if device.type != "cuda":
        return None
    torch.cuda.set_device(device)
    return "nccl"


if __name__ == "__main__":
    raise SystemExit(main())
