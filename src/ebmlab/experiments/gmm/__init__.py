"""The Gaussian-mixture study (``ebmlab gmm``): Jarzynski vs PCD vs CD on a two-mode mixture."""

from .cli import config_from_args, configure_parser, main
from .config import PRESETS, GmmConfig
from .run import build_trainer, left_index, observe, run_study

__all__ = [
    "PRESETS",
    "GmmConfig",
    "build_trainer",
    "config_from_args",
    "configure_parser",
    "left_index",
    "main",
    "observe",
    "run_study",
]
