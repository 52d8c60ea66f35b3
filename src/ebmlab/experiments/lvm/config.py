"""Settings of the ``ebmlab lvm`` experiments: one frozen config per experiment and its presets.

order-selection follows Cuin, Carbone & Akyildiz (NeurIPS 2025, Table 1): x ~ U[-2.5, 2.5], sigma*^2 = 7.5,
alpha* = 1, true order p* in 2..8, candidates 1..10 (polynomials 1, x, ..., x^p: p + 1 coefficients), d_y in
{100, 250, 500}, 100 trials each; N = 50 walkers, K = 200 iterations, h = 1e-6, Adam (lr 5e-3, beta1 0.9), no
resampling, walkers from the exact posterior at theta_0 = theta* + theta0_shift (in log sigma^2, log alpha).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

EXPERIMENTS = ("order-selection", "error-model", "logistic")
PRESET_NAMES = ("quick", "cpu")


@dataclass(frozen=True)
class WalkerSettings:
    """The weighted walkers and the optimiser shared by the regression experiments."""

    n_walkers: int = 50
    iters: int = 200
    step_size: float = 1e-6
    lr: float = 5e-3
    beta1: float = 0.9
    theta0_shift: float = 1.0  # theta_0 = (log sigma*^2, log alpha*) + this, in both coordinates
    checkpoint_every: int = 50


@dataclass(frozen=True)
class OrderSelectionConfig(WalkerSettings):
    true_orders: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    candidates: tuple[int, ...] = tuple(range(1, 11))
    d_ys: tuple[int, ...] = (100, 250, 500)
    trials: int = 100
    sigma2: float = 7.5
    alpha: float = 1.0
    x_range: float = 2.5


@dataclass(frozen=True)
class ErrorModelConfig(WalkerSettings):
    d_y: int = 500
    d_x: int = 8
    trials: int = 100
    sigma: float = 1.0
    alpha: float = 1.0
    nu: int = 4  # Student-t degrees of freedom (known to the Student-t model)


@dataclass(frozen=True)
class LogisticConfig:
    n_walkers: tuple[int, ...] = (10, 50, 100)
    iters: int = 300
    step_size: float = 0.05  # Langevin step in the Laplace-whitened coordinates
    lr: float = 0.01  # Adam, every method
    prior_var: float = 5.0
    theta0: float = 0.0
    soul_chain: int = 5  # SOUL's Langevin steps per theta update
    ess_threshold: float = 0.5  # JALA's gradient walkers (systematic) and estimator population (multinomial)
    test_fraction: float = 0.2
    theta_tol: float = 0.05  # the time-to-converge criterion: |theta - consensus| <= theta_tol
    checkpoint_every: int = 100
    methods: tuple[str, ...] = field(default=("jala", "pgd", "soul"))


PRESETS: dict[str, dict[str, Any]] = {
    "order-selection": {
        "cpu": OrderSelectionConfig(),
        "quick": OrderSelectionConfig(true_orders=(2, 3), candidates=(1, 2, 3, 4), d_ys=(100,), trials=4, iters=20),
    },
    "error-model": {
        "cpu": ErrorModelConfig(),
        "quick": ErrorModelConfig(d_y=100, trials=4, iters=20),
    },
    "logistic": {
        "cpu": LogisticConfig(),
        "quick": LogisticConfig(n_walkers=(10,), iters=20, checkpoint_every=10),
    },
}
DEFAULT_SEEDS = {
    "order-selection": [0],
    "error-model": [0],
    "logistic": list(range(10)),
}


def preset(experiment: str, name: str, **overrides):
    """The preset's config with the non-None ``overrides`` applied (a ValueError names a bad value)."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {list(EXPERIMENTS)}")
    if name not in PRESET_NAMES:
        raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESET_NAMES)}")
    cfg = replace(PRESETS[experiment][name], **{k: v for k, v in overrides.items() if v is not None})
    for key in ("trials", "iters"):
        value = getattr(cfg, key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"--{key} must be an integer >= 1, got {value!r}")
    return cfg
