"""ebmlab: energy-based models, Jarzynski-weighted training, latent EBM priors and
normalizing-constant estimation in PyTorch."""

__version__ = "0.1.0"
