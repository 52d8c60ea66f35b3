"""Training: one negative phase (CD, PCD, Jarzynski) and one loop."""

from .negative_phase import METHODS, NegativePhase, move_walkers, negative_phase, walkers_at
from .trainer import DivergenceError, Trainer, validate_data

__all__ = [
    "METHODS",
    "DivergenceError",
    "NegativePhase",
    "Trainer",
    "move_walkers",
    "negative_phase",
    "validate_data",
    "walkers_at",
]
