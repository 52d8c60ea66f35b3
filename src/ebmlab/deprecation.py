"""Old public names that keep working: each use warns with a DeprecationWarning naming the new one."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def resolve(path: str) -> Any:
    """The object at a dotted ``path`` ("package.module.name")."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def warn_renamed(old: str, new: str) -> None:
    """Warn (DeprecationWarning, at the caller's caller) that ``old`` is now ``new``."""
    warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=3)


def renamed(module: str, aliases: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving the old names of ``module``: ``aliases`` maps each old name to the
    dotted path of its new home; a lookup warns and returns the new object."""

    def __getattr__(name: str) -> Any:
        if name not in aliases:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warn_renamed(f"{module}.{name}", aliases[name])
        return resolve(aliases[name])

    return __getattr__
