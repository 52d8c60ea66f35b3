"""The settings of ``ebmlab latent`` as value objects: one frozen group per job (the DAMC amortiser, the Langevin
chains, the MNIST model and its training, the data sizes, the anomaly task, the two toys), each validating its
own fields once, at construction, with one-line errors; :class:`LatentPreset` holds them with the library's
:class:`~ebmlab.latent.WeightedPriorConfig` (the jarzynski sampler's walkers) and
:class:`~ebmlab.latent.EvidenceConfig` (the test log-likelihood).  Presets and rules: :mod:`.config`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from ...errors import check_int
from ...latent.evidence import EvidenceConfig
from ...latent.weighted_prior import WeightedPriorConfig

SAMPLERS = ("lebm", "damc", "jarzynski")
POSTERIORS = ("lebm", "damc")  # the posterior chains of the jarzynski sampler
EBM_ACTIVATIONS = ("leaky_relu", "gelu")


def _check(group: object, positive: tuple[str, ...] = ()) -> None:
    """Every int field of ``group`` an integer >= 1 (None allowed where the default is None), every field
    named in ``positive`` a number > 0; errors name the field as ``group.field``."""
    prefix = type(group).__name__
    for f in fields(group):  # type: ignore[arg-type]
        v = getattr(group, f.name)
        if f.type in ("int", "int | None") and not (v is None and f.type == "int | None"):
            check_int(f"{prefix}.{f.name}", v, 1)
    for name in positive:
        v = getattr(group, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{prefix}.{name} must be a finite number > 0, got {v!r}")


@dataclass(frozen=True)
class AmortiserSettings:
    """The DAMC amortiser: a conditional diffusion model of ``diffusion_steps`` time steps (nf, t_dim, cond_dim,
    nif: its sizes), ``q_updates`` updates per iteration, and its EMA: rate ``ema_rho`` per update every
    ``ema_every`` iterations (the reference's, and the long-run limit) with half-life ``ema_half_life`` as a
    fraction of the run (None: ``ema_rho`` fixed)."""

    diffusion_steps: int = 20
    nf: int = 2
    t_dim: int = 64
    cond_dim: int = 128
    nif: int = 8
    q_updates: int = 3
    ema_rho: float = 0.005
    ema_every: int = 10
    ema_half_life: float | None = 0.1

    def __post_init__(self) -> None:
        _check(self, ("ema_rho",))
        if self.ema_rho > 1:
            raise ValueError(f"AmortiserSettings.ema_rho must lie in (0, 1], got {self.ema_rho}")
        if self.ema_half_life is not None and not 0 < self.ema_half_life <= 1:
            raise ValueError(
                f"AmortiserSettings.ema_half_life must lie in (0, 1] (a fraction of the run), got {self.ema_half_life}"
            )


@dataclass(frozen=True)
class ChainSettings:
    """Langevin steps of the MNIST and toy-prior samplers: prior chains (training, generation), the posterior
    chains of LEBM and DAMC, and the noise-free refinement after an amortised start."""

    prior_steps: int = 60
    lebm_post_steps: int = 20
    damc_post_steps: int = 20
    eval_prior_steps: int = 100
    refine_steps: int = 10

    def __post_init__(self) -> None:
        _check(self)


@dataclass(frozen=True)
class ModelSettings:
    """The MNIST model: latent dimension, generator width ``ngf``, the EBM prior's hidden width and activation,
    the observation noise ``sigma`` (images in [-1, 1])."""

    latent_dim: int = 16
    ngf: int = 4
    ebm_hidden: int = 200
    ebm_activation: str = "leaky_relu"
    sigma: float = 0.3

    def __post_init__(self) -> None:
        _check(self, ("sigma",))
        if self.ebm_activation not in EBM_ACTIVATIONS:
            raise ValueError(
                f"ModelSettings.ebm_activation must be one of {list(EBM_ACTIVATIONS)}, got {self.ebm_activation!r}"
            )


@dataclass(frozen=True)
class TrainingSettings:
    """The MNIST training loop: batch size, iterations, Adam rates of G, E and the amortiser Q, the gradient-norm
    clip of G and E (None: none), the prior loss's regulariser (``energy_reg`` for any sampler; None:
    ``lebm_energy_reg`` for LEBM and 0 otherwise), and every how many iterations to evaluate, run the amortisation
    diagnostic (on ``diag_n`` training images) and write a checkpoint."""

    batch_size: int = 64
    iters: int = 500
    lr_g: float = 2e-4
    lr_e: float = 1e-4
    lr_q: float = 2e-4
    clip: float | None = 100.0
    lebm_energy_reg: float = 1e-3
    energy_reg: float | None = None
    eval_every: int = 100
    diag_every: int = 50
    diag_n: int = 128
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        _check(self, ("lr_g", "lr_e", "lr_q") + (("clip",) if self.clip is not None else ()))
        for name in ("lebm_energy_reg", "energy_reg"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"TrainingSettings.{name} (--energy-reg) must be a finite number >= 0, got {v}")


@dataclass(frozen=True)
class DataSettings:
    """MNIST sizes of the generate task, per digit: model-train images (None: all left), model-test images,
    classifier-train images and epochs; ``n_generate`` samples for the Frechet distances."""

    train_per_digit: int | None = 400
    test_per_digit: int = 100
    classifier_per_digit: int = 350
    classifier_epochs: int = 4
    n_generate: int = 1000

    def __post_init__(self) -> None:
        _check(self)


@dataclass(frozen=True)
class AnomalySettings:
    """The anomaly task: latent dimension, observation noise ``sigma`` with per-digit exceptions
    ``sigma_per_digit`` ((digit, sigma) pairs: the reference's), the (G, E, Q) learning rates ``lrs`` (None: the
    training's), refinement steps, a seeded test subsample of ``max_test`` images (None: all), and whether to pool
    the training images when the data directory has them."""

    latent_dim: int = 8
    sigma: float = 1.0
    sigma_per_digit: tuple[tuple[int, float], ...] = ((1, 0.1),)
    lrs: tuple[float, float, float] | None = None
    refine_steps: int = 5
    max_test: int | None = None
    pool_train: bool = False

    def __post_init__(self) -> None:
        _check(self, ("sigma",))
        for digit, s in self.sigma_per_digit:
            if digit not in range(10) or not s > 0:
                raise ValueError(
                    f"AnomalySettings.sigma_per_digit needs (digit 0-9, sigma > 0) pairs, got {(digit, s)}"
                )
        if self.lrs is not None and (len(self.lrs) != 3 or min(self.lrs) <= 0):
            raise ValueError(f"AnomalySettings.lrs must be three rates (G, E, Q) > 0, got {self.lrs}")

    def sigma_of(self, digit: int) -> float:
        """The observation sigma of a run with held-out ``digit``: its per-digit value, else ``sigma``."""
        return dict(self.sigma_per_digit).get(digit, self.sigma)


@dataclass(frozen=True)
class ToySettings:
    """The toy task: amortiser iterations and batch, posterior chain steps (LEBM's short run and DAMC's), the
    long-run reference's steps, evaluation points and period, the toy amortiser's EMA rate and depth ``nf``."""

    iters: int = 300
    batch: int = 500
    chain_steps: int = 50
    ref_steps: int = 2000
    eval_n: int = 5000
    eval_every: int = 100
    ema_rho: float = 0.75
    nf: int = 4

    def __post_init__(self) -> None:
        _check(self, ("ema_rho",))


@dataclass(frozen=True)
class ToyPriorSettings:
    """The toy-prior task: iterations, batch, posterior chain steps, training points ``n``, the 2-D prior's hidden
    width and learning rate, test points, and exact pinwheel draws ``true_n`` for the true cell probabilities."""

    iters: int = 300
    batch: int = 200
    post_steps: int = 30
    n: int = 5000
    hidden: int = 128
    lr_e: float = 1e-3
    test_n: int = 1000
    true_n: int = 1_000_000

    def __post_init__(self) -> None:
        _check(self, ("lr_e",))


@dataclass(frozen=True)
class LatentPreset:
    """All settings of one preset (see docs/latent.md for the design of each): the groups above, the jarzynski
    sampler's walkers and posterior chains (``posterior``: lebm or damc), the test log-likelihood, and the
    samplers the preset is meant for (``allowed_samplers``)."""

    amortiser: AmortiserSettings = field(default_factory=AmortiserSettings)
    chains: ChainSettings = field(default_factory=ChainSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    data: DataSettings = field(default_factory=DataSettings)
    anomaly: AnomalySettings = field(default_factory=AnomalySettings)
    toy: ToySettings = field(default_factory=ToySettings)
    toy_prior: ToyPriorSettings = field(default_factory=ToyPriorSettings)
    walkers: WeightedPriorConfig = field(default_factory=WeightedPriorConfig)
    loglik: EvidenceConfig = field(default_factory=EvidenceConfig)
    posterior: str = "lebm"
    allowed_samplers: tuple[str, ...] = SAMPLERS

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name not in ("posterior", "allowed_samplers") and type(getattr(self, f.name)).__name__ != f.type:
                raise TypeError(f"LatentPreset.{f.name} must be a {f.type}, got {type(getattr(self, f.name)).__name__}")
        if self.posterior not in POSTERIORS:
            raise ValueError(f"LatentPreset.posterior must be one of {list(POSTERIORS)}, got {self.posterior!r}")
        if not self.allowed_samplers or set(self.allowed_samplers) - set(SAMPLERS):
            raise ValueError(
                f"LatentPreset.allowed_samplers must be a non-empty subset of {list(SAMPLERS)}, "
                f"got {self.allowed_samplers}"
            )
