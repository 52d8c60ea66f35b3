"""Latent-space EBM priors: generator + EBM prior on z, short-run LEBM and Diffusion-Amortized MCMC (DAMC), the
Jarzynski-weighted prior walkers, the test log-likelihood report and the samplers' diagnostics."""

from .diagnostics import amortisation_diagnostic, pixel_mse
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
from .evidence import EvidenceConfig, ais_check, loglik_metrics, prior_log_z, weight_diagnostics, z_score
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
    "EvidenceConfig",
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
    "ais_check",
    "alpha_sigma",
    "amortisation_diagnostic",
    "ancestral_sample",
    "ddpm_posterior",
    "ema_update",
    "gradient_descent",
    "langevin",
    "loglik_metrics",
    "pixel_mse",
    "predict_x0",
    "prior_log_z",
    "time_grid",
    "weight_diagnostics",
    "z_score",
]
