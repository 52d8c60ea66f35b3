"""The latent-space EBM study (``ebmlab latent``): LEBM, DAMC and weighted prior walkers."""

from .cli import configure_parser, main

__all__ = ["configure_parser", "main"]
