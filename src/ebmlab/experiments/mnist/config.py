"""Settings of the imbalanced-digit study: one configuration per space (pixels, or a projection to
a few dimensions) and the named presets of each."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from ...data.projection import DIGITS8X8_DIM, PROJECTED, SPACES, check_space_dim
from ...metrics.mass_checks import MassCheck
from ...sampling.resampling import Resampling, check_threshold
from ...sampling.smc import KERNELS
from ...training import NegativePhase
from ..study import resolve_device, study_phase

DIGITS = (2, 3, 6)
RATIOS = (4, 2, 1)


@dataclass(frozen=True)
class StudyConfig:
    """What every space shares: the data split, the walkers and the schedule."""

    space: str = "lda"
    split: str = "test"  # MNIST split the images come from
    ebm_unit: int = 120  # EBM images per digit = ratio * unit (480/240/120)
    heldout_unit: int = 60  # held-out images per digit = ratio * unit (240/120/60)
    split_seed: int = 0
    n_walkers: int = 4000
    log_z_walkers: int = 4000  # estimator population (never in the gradient); 0 = none
    steps_per_update: int = 5
    step_size: float = 0.01  # ULA drift step h on the model's energy
    iters: int = 1500
    lr: float = 1e-3
    resampler: str = "systematic"
    ess_threshold: float = 0.5
    cd_reset_every: int = 4
    kernel: str = "ula"  # walker kernel: "ula" or "mala"
    cess_target: float | None = None  # ESS-controlled parameter updates (Jarzynski only); None = off
    lr_ess_target: float | None = None  # ESS-adaptive learning rate (Jarzynski only); None = off
    split_increments: bool = False  # record the parameter / kernel split of the log-weight increments
    eval_every: int = 100
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise ValueError(f"unknown space {self.space!r}; choose one of {list(SPACES)}")
        if self.n_walkers < 2 or self.log_z_walkers < 0:
            raise ValueError(f"need n_walkers >= 2 and log_z_walkers >= 0, got {self.n_walkers}, {self.log_z_walkers}")
        if self.iters < self.eval_every or self.eval_every < 1:
            raise ValueError(f"need 1 <= eval_every ({self.eval_every}) <= iters ({self.iters})")
        Resampling(self.ess_threshold, self.resampler)
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; choose one of {sorted(KERNELS)}")
        if self.cess_target is not None:
            check_threshold(self.cess_target, "cess_target")
        if self.lr_ess_target is not None and not 0 < self.lr_ess_target < 1:
            raise ValueError(f"lr_ess_target must lie in (0, 1) (or None: off), got {self.lr_ess_target}")
        if self.lr_ess_target is not None and self.cess_target is not None:
            raise ValueError("cess_target and lr_ess_target are two ESS controls of the update: choose one")

    def negative_phase(self, method: str, step_size: float, **extra) -> NegativePhase:
        """The negative phase of ``method`` under these settings: ``steps_per_update`` moves of ``kernel``
        with drift step ``step_size``; resampling and ESS control for Jarzynski; CD's resets."""
        return study_phase(method, self, step_size, self.steps_per_update, **extra)

    def trainer_options(self, method: str) -> dict:
        """The :class:`~ebmlab.training.Trainer` options these settings ask for: the ESS-adaptive learning
        rate (Jarzynski only) and the increment split."""
        lr_target = self.lr_ess_target if method == "jarzynski" else None
        return {"lr_ess_target": lr_target, "split_increments": self.split_increments}

    @property
    def target_fractions(self) -> tuple[float, ...]:
        return tuple(r / sum(RATIOS) for r in RATIOS)


@dataclass(frozen=True)
class LowDimConfig(StudyConfig):
    """The study in a ``dim``-dimensional projection (``space`` 'lda' or 'pca').

    Coordinates: standardised projection times ``scale``.  Energy: ``MLPEnergy(dim, hidden,
    confinement_std=scale)``, so the initial model is N(0, scale^2 I), the Gaussian with the data's
    mean and covariance (exact initial draws and log Z).  Class regions: RBF SVC with C = ``svc_c``.
    Model masses: grid quadrature on [-grid_half_width, grid_half_width]^dim with ``grid_cells`` per
    axis (dim <= 2), and AIS from the initial model at every evaluation (``ais_particles`` particles,
    ``ais_temperatures`` temperatures, ``ais_mala_steps`` MALA steps of size ``ais_step_size`` at each)
    and, larger (``final_ais_particles``, ``final_ais_temperatures``), for the final model; with
    ``mass_check`` the final model's masses also by three independent estimators (:mod:`ebmlab.metrics.mass_checks`).
    ``precondition``: the walkers' kernel runs in the coordinates whitened by the training data's mean and
    covariance (a fixed :class:`~ebmlab.sampling.preconditioner.Preconditioner`).
    """

    dim: int = 2
    scale: float = 5.0
    pca_dims: int = 50  # PCA before LDA
    hidden: tuple[int, ...] = (64, 64)
    svc_c: float = 1.0
    grid_half_width: float = 40.0  # 8 standard deviations of the initial model (scale 5)
    grid_cells: int = 500
    ais_particles: int = 1000
    ais_temperatures: int = 100
    ais_step_size: float = 2.0  # MALA step for coordinates of scale 5 (acceptance about 0.8-0.9)
    ais_mala_steps: int = 2
    final_ais_particles: int = 4000
    final_ais_temperatures: int = 1000
    precondition: bool = False  # move the walkers in the coordinates whitened by the data's mean and covariance
    mass_check: MassCheck | None = None  # final masses by three independent estimators (dim > 2)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.mass_check, dict):  # as recorded in a study file
            object.__setattr__(self, "mass_check", MassCheck(**self.mass_check))
        if self.space not in PROJECTED:
            raise ValueError(f"LowDimConfig is for spaces {list(PROJECTED)}, got {self.space!r}")
        check_space_dim(self.space, self.dim, len(DIGITS), self.pca_dims)
        if not (self.scale > 0 and self.step_size > 0):
            raise ValueError(f"scale and step_size must be positive, got {self.scale}, {self.step_size}")

    @property
    def exact(self) -> bool:
        """Whether grid quadrature gives the model's masses and log Z (1-D and 2-D)."""
        return self.dim <= 2


@dataclass(frozen=True)
class PixelConfig(StudyConfig):
    """The study on 28x28 pixels in [-1, 1] (Carbone et al. 2023, section 4).

    h and kappa act on U (drift h grad U); T = noise_std^2 / (2 step_size); the trainer sees V = U/T.
    Model masses: ``chains`` independent MALA chains of ``chain_steps`` steps at the current
    parameters, started uniform on the pixel box, labelled by the CNN classifier.
    """

    space: str = "pixels"
    classifier_epochs: int = 10
    channels: int = 16  # ConvEnergy width (16 = the paper's)
    n_walkers: int = 512
    log_z_walkers: int = 0
    walker_batch: int = 128
    steps_per_update: int = 10
    step_size: float = 0.1
    noise_std: float = 0.1  # T = 0.05: weights stay usable over the run (docs/mnist.md)
    wall: float = 0.5  # kappa of the soft pixel-box wall, in U units; keep step_size * wall <= ~0.05
    init_steps: int = 30  # unweighted ULA steps at theta_0 after the uniform draw (Jarzynski)
    iters: int = 1000
    data_batch: int = 128
    lr: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.999
    final_lr_factor: float = 0.01  # linear decay of the learning rate to this fraction at the end
    grad_clip: float = 1.0  # on the gradient of the loss in U units
    energy_reg: float = 1e-2  # alpha of alpha * (E_data[U^2] + E_w[U^2]), U units
    eval_every: int = 40
    checkpoint_every: int = 200
    chains: int = 64
    chain_steps: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.space != "pixels":
            raise ValueError(f"PixelConfig is for space 'pixels', got {self.space!r}")
        if not (self.step_size > 0 and self.noise_std > 0):
            raise ValueError(f"need step_size > 0 and noise_std > 0, got {self.step_size}, {self.noise_std}")
        if self.step_size * self.wall >= 1.0:
            raise ValueError(
                f"step_size * wall = {self.step_size * self.wall:g} >= 1: ULA on the pixel wall is "
                "too coarse and the Jarzynski weights collapse even at fixed parameters; lower wall "
                "or step_size (the presets keep the product at 0.05)"
            )
        if self.walker_batch > self.n_walkers or self.chains < 2 or self.chain_steps < 0:
            raise ValueError("need walker_batch <= n_walkers, chains >= 2 and chain_steps >= 0")

    @property
    def temperature(self) -> float:
        return self.noise_std**2 / (2.0 * self.step_size)


_LOW_QUICK: dict[str, Any] = dict(
    n_walkers=400, log_z_walkers=400, iters=60, eval_every=20, checkpoint_every=20, grid_cells=120,
    ais_particles=200, ais_temperatures=20, final_ais_particles=400, final_ais_temperatures=40,
)  # fmt: skip
_DIGITS8X8_SPLIT: dict[str, Any] = dict(
    ebm_unit=30, heldout_unit=8
)  # 120/60/30 training, 32/16/8 held out, the rest (137) for the SVC
PRESETS: dict[str, dict[str, StudyConfig]] = {
    "lda": {
        "quick": LowDimConfig(space="lda", **_LOW_QUICK),  # smoke test, seconds
        "cpu": LowDimConfig(space="lda"),  # the 2-D study: exact masses, ~1 minute per method and seed
    },
    "pca": {
        "quick": LowDimConfig(space="pca", dim=8, scale=3.0, ais_step_size=0.3, **_LOW_QUICK),
        # the label-free variant; in 8-D AIS needs more, smaller steps (acceptance about 0.6)
        "cpu": LowDimConfig(space="pca", dim=8, scale=3.0, ais_particles=2000, ais_temperatures=300, ais_step_size=0.3),
    },
    "digits8x8": {  # the 64 pixels of scikit-learn's 8x8 digits (177/183/181 images of 2/3/6)
        "quick": LowDimConfig(
            space="digits8x8", dim=DIGITS8X8_DIM, scale=3.0, ais_step_size=0.1, **_LOW_QUICK | _DIGITS8X8_SPLIT
        ),
        "cpu": LowDimConfig(
            space="digits8x8",
            dim=DIGITS8X8_DIM,
            scale=3.0,
            ais_particles=2000,
            ais_temperatures=300,
            ais_step_size=0.1,
            **_DIGITS8X8_SPLIT,
        ),
    },
    "pixels": {
        # smoke run for tests: tiny populations and chains, a 2-epoch classifier
        "quick": PixelConfig(
            classifier_epochs=2,
            channels=8,
            n_walkers=64,
            walker_batch=32,
            steps_per_update=2,
            init_steps=5,
            iters=24,
            data_batch=64,
            eval_every=8,
            checkpoint_every=8,
            chains=16,
            chain_steps=10,
        ),
        # the former CPU preset (1000 updates, ~11 minutes per method and seed on a free core)
        "cpu": PixelConfig(),
        # the paper's settings (section 4 of the note) for a GPU; 600 epochs of 9 800 images / 128
        "paper": PixelConfig(
            n_walkers=1024,
            walker_batch=256,
            steps_per_update=30,
            step_size=5e-5,
            noise_std=1e-4,
            wall=1e3,
            init_steps=20_000,
            iters=46_000,
            lr=1e-4,
            final_lr_factor=1e-3,
            eval_every=400,
            checkpoint_every=2000,
            chains=256,
            chain_steps=1000,
        ),
    },
}
DEFAULT_SPACE = "lda"


def default_seeds(space: str, name: str) -> list[int]:
    """Seeds of a preset: one for ``quick``, five for the projected studies, three in pixel space."""
    return [0] if name == "quick" else [0, 1, 2] if space == "pixels" else [0, 1, 2, 3, 4]


def preset(space: str, name: str, dim: int | None = None, **overrides) -> StudyConfig:
    """The named preset of a space, with ``dim`` (projected spaces only) and other fields overridden."""
    if space not in PRESETS:
        raise ValueError(f"unknown space {space!r}; choose one of {list(SPACES)}")
    if name not in PRESETS[space]:
        others = [s for s, p in PRESETS.items() if name in p]
        raise ValueError(
            f"--space {space} has presets {sorted(PRESETS[space])}, not {name!r}"
            + (f" (preset {name!r} exists for --space {', '.join(others)})" if others else "")
        )
    if dim is not None:
        check_space_dim(space, dim, len(DIGITS))
    changes = dict(overrides) | ({} if dim is None else {"dim": dim})
    return replace(PRESETS[space][name], **changes)


def study_device(name: str, space: str) -> torch.device:
    """The device of a --device value for ``space``: pixels run anywhere; the projected spaces (small MLPs,
    quadrature, SVC regions: CPU work of minutes) on the CPU, which ``auto`` picks for them."""
    if space == "pixels":
        return resolve_device(name)
    if name == "cuda":
        raise ValueError(f"--space {space} runs on the CPU (a small MLP; quadrature and SVC regions): use --device cpu")
    return torch.device("cpu")
