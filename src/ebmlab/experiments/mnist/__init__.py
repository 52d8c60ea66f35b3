"""The imbalanced-digit study (``ebmlab mnist``): Jarzynski vs PCD vs CD on digits 2/3/6 at 4:2:1."""

from .cli import config_from_args, configure_parser, main
from .run import load_split, run_study

__all__ = ["config_from_args", "configure_parser", "load_split", "main", "run_study"]
