"""Griffe extension for the API pages: the docstrings write shapes as ``(N, *event)`` and ``(*batch, K)``;
outside code spans Markdown would read those stars as emphasis, so they are escaped before rendering."""

from __future__ import annotations

import re
from typing import Any

import griffe

CODE = re.compile(r"(``.*?``|`[^`]*`)", re.DOTALL)  # code spans keep their text as written
SHAPE_STAR = re.compile(r"(?<=[(\[, ])\*(?=[A-Za-z_,)])")


def escape_shape_stars(text: str) -> str:
    """``(*batch, K)`` -> ``(\\*batch, K)`` outside code spans."""
    parts = CODE.split(text)
    return "".join(p if i % 2 else SHAPE_STAR.sub(r"\\*", p) for i, p in enumerate(parts))


class ShapeStars(griffe.Extension):
    """Escape the shape stars of every docstring of the package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = escape_shape_stars(obj.docstring.value)
            stack.extend(m for m in obj.members.values() if not m.is_alias)  # type: ignore[misc]
