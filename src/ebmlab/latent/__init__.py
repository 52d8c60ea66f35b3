"""Latent-space EBM priors: generator + EBM prior on z, short-run LEBM and Diffusion-Amortized MCMC (DAMC)."""

from .diffusion import (
    ConvEncoder,
    CosineLogSNR,
    Denoiser,
    LatentDiffusion,
    MLPEncoder,
    alpha_sigma,
    ancestral_sample,
    ddpm_posterior,
    ema_update,
    predict_x0,
    time_grid,
)
from .models import ConvGenerator, GaussianPrior, LatentEBMPrior, LatentModel, MLPGenerator
from .samplers import ChainConfig, DAMCConfig, DAMCSampler, LEBMSampler, gradient_descent, langevin
from .trainer import LatentTrainer, LoopConfig
from .weighted_prior import JarzynskiPriorSampler, Sampler, WeightedPriorConfig

__all__ = [
    "ChainConfig",
    "ConvEncoder",
    "ConvGenerator",
    "CosineLogSNR",
    "DAMCConfig",
    "DAMCSampler",
    "Denoiser",
    "GaussianPrior",
    "JarzynskiPriorSampler",
    "LEBMSampler",
    "LatentDiffusion",
    "LatentEBMPrior",
    "LatentModel",
    "LatentTrainer",
    "LoopConfig",
    "MLPEncoder",
    "MLPGenerator",
    "Sampler",
    "WeightedPriorConfig",
    "alpha_sigma",
    "ancestral_sample",
    "ddpm_posterior",
    "ema_update",
    "gradient_descent",
    "langevin",
    "predict_x0",
    "time_grid",
]
