"""The dimension sweep of the imbalanced-digit study (``ebmlab scaling``): see :mod:`.cli`."""

from .cli import configure_parser, main

__all__ = ["configure_parser", "main"]
