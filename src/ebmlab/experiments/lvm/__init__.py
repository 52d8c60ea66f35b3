"""``ebmlab lvm``: see :mod:`.cli`."""

from .cli import configure_parser, main

__all__ = ["configure_parser", "main"]
