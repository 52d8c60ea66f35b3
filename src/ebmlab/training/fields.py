"""The attributes of :class:`~ebmlab.training.Trainer` that its mixins (:mod:`.moves`, :mod:`.state`) use,
declared once for the type checker; the trainer's ``__init__`` sets them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from ..distributed import Collective
    from ..sampling.populations import Summaries
    from ..sampling.preconditioner import Preconditioner
    from ..sampling.walkers import Walkers
    from .negative_phase import NegativePhase


class TrainerFields:
    """Declarations only: no values and no behaviour."""

    energy: nn.Module
    data: Tensor
    optimizer: torch.optim.Optimizer
    phase: NegativePhase
    scheduler: Any
    generator: torch.Generator
    collective: Collective
    n_walkers: int
    log_z_walkers: int
    data_batch: int | None
    energy_reg: float
    grad_clip: float | None
    divergence_bound: float
    noise: str
    noise_seed: int
    step_count: int
    walkers: Walkers
    estimator: Walkers | None
    summaries: Summaries
    precondition: Preconditioner | None
    split_increments: bool
    lr_ess_target: float | None
    lr_scale: float

    if TYPE_CHECKING:

        def refresh_summaries(self) -> None: ...

        def _data_sample(self, n: int) -> Tensor: ...
