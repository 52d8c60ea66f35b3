"""Training: one negative phase (CD, PCD, Jarzynski) and one loop."""

from .negative_phase import METHODS, NegativePhase, negative_phase
from .trainer import Trainer
from .validation import DivergenceError, validate_data

__all__ = ["METHODS", "DivergenceError", "NegativePhase", "Trainer", "negative_phase", "validate_data"]
