"""MkDocs hook: the docstrings' Sphinx cross-reference roles (``:class:`X```, ``:func:`~a.b.f```, ...) render
as plain code in the API pages instead of showing the role's name; a leading ``~`` keeps the last name only,
as in Sphinx."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **_) -> str:
    """Replace each rendered role by its target in code."""
    return ROLE.sub(_code, html)
