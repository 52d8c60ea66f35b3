"""Energies: ``nn.Module``s mapping (N, *event) inputs to (N,) energies in nats.

Any module with that signature plugs into ebmlab.  Models with a closed-form normalizing constant
also provide ``log_z()`` and ``sample(n, generator)``.
"""

from .boxed import BoxedTemperedEnergy, box_log_z
from .gaussian import Gaussian, GaussianMixture
from .networks import ConvEnergy, MLPEnergy

__all__ = ["BoxedTemperedEnergy", "ConvEnergy", "Gaussian", "GaussianMixture", "MLPEnergy", "box_log_z"]
