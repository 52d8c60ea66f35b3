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
    "LangevinState", "energy_and_grad", "init_state", "mala", "refresh", "transition_log_weight", "ula",
    "ula_propose", "RESAMPLERS", "get_resampler", "multinomial", "residual", "stratified",
    "systematic", "Walkers", "add_log_weights", "cv2", "ess", "ess_fraction", "log_mean_weight",
    "log_z_estimate", "make_walkers", "maybe_resample", "normalized_weights", "resample",
]
