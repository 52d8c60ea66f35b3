"""Old public names that keep working: each use warns with a DeprecationWarning naming the new one."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

T = TypeVar("T")


def resolve(path: str) -> Any:
    """The object at a dotted ``path`` ("package.module.name")."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn (DeprecationWarning, by default at the caller's caller) that ``old`` is now ``new``."""
    warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=stacklevel)


def renamed(module: str, aliases: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving the old names of ``module``: ``aliases`` maps each old name to the
    dotted path of its new home; a lookup warns and returns the new object."""

    def __getattr__(name: str) -> Any:
        if name not in aliases:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warn_renamed(f"{module}.{name}", aliases[name])
        return resolve(aliases[name])

    return __getattr__


def from_old_keywords(owner: str, name: str, value: T, legacy: dict[str, Any], base: T, fields: dict[str, str]) -> T:
    """The value object a call gets as ``name=``: ``value``, or, when the caller used the old keywords ``legacy``
    (each naming a field of that object, mapped by ``fields``), ``base`` with them, warning that they are
    deprecated.  ``value`` must then be the parameter's default ``base`` itself.  A TypeError names unknown
    keywords or a mix of both forms."""
    unknown = sorted(set(legacy) - set(fields))
    if unknown:
        raise TypeError(f"{owner}() got unexpected keyword argument(s) {unknown}")
    if not legacy:
        return value
    if value is not base:
        raise TypeError(f"{owner}(): pass {name}= or the old keywords {sorted(legacy)}, not both")
    old = f"{owner}({', '.join(f'{k}=' for k in legacy)})"
    warn_renamed(old, f"{owner}({name}=...)", stacklevel=5)  # at the user's call: user, owner, wrapper, here
    return replace(base, **{fields[k]: v for k, v in legacy.items()})  # type: ignore[type-var]
