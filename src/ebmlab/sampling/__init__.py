"""Langevin kernels, weighted walker populations and resampling."""

from .langevin import (
    LangevinState,
    energy_and_grad,
    init_state,
    mala,
    refresh,
    transition_log_weight,
    ula,
    ula_propose,
)
from .resampling import RESAMPLERS, get_resampler, multinomial, residual, stratified, systematic
from .walkers import (
    Walkers,
    add_log_weights,
    cv2,
    ess,
    ess_fraction,
    log_mean_weight,
    log_z_estimate,
    make_walkers,
    maybe_resample,
    normalized_weights,
    resample,
)

__all__ = [
    "RESAMPLERS",
    "LangevinState",
    "Walkers",
    "add_log_weights",
    "cv2",
    "energy_and_grad",
    "ess",
    "ess_fraction",
    "get_resampler",
    "init_state",
    "log_mean_weight",
    "log_z_estimate",
    "make_walkers",
    "mala",
    "maybe_resample",
    "multinomial",
    "normalized_weights",
    "refresh",
    "resample",
    "residual",
    "stratified",
    "systematic",
    "transition_log_weight",
    "ula",
    "ula_propose",
]
