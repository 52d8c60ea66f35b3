"""The normalizing-constant estimator study (``ebmlab estimators``): one module per experiment, the settings in
:mod:`.config`, the study in :mod:`.run`, the command line in :mod:`.cli`."""

from .cli import configure_parser, main
from .config import EXPERIMENTS

__all__ = ["EXPERIMENTS", "configure_parser", "main"]
