"""Deprecated module path: the latent-EBM training loop is :mod:`ebmlab.latent.trainer`."""

from ..deprecation import warn_renamed
from .trainer import LatentTrainer, LoopConfig, Sampler

warn_renamed("ebmlab.latent.loop", "ebmlab.latent.trainer")

__all__ = ["LatentTrainer", "LoopConfig", "Sampler"]
