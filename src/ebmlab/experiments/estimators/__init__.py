"""The normalizing-constant estimator study (``ebmlab estimators``): one module per experiment, the command line
in :mod:`.cli`."""

from .cli import EXPERIMENTS, configure_parser, main

__all__ = ["EXPERIMENTS", "configure_parser", "main"]
