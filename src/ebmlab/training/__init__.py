"""Training: one negative phase (CD, PCD, Jarzynski) and one loop."""
from .negative_phase import METHODS, NegativePhase, move_walkers, negative_phase, walkers_at
from .trainer import DivergenceError, Trainer, validate_data

__all__ = ["METHODS", "NegativePhase", "move_walkers", "negative_phase", "walkers_at", "DivergenceError",
           "Trainer", "validate_data"]
