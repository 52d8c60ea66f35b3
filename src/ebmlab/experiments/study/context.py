"""The run context: everything one (variant, seed) run of a study needs besides its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...distributed import LOCAL, Collective
from ...errors import check_int


@dataclass(frozen=True)
class RunContext:
    """One run of a study grid.

    seed: the run's seed (every training stream derives from it); out: the study's output directory (plots and
    per-run files go there); checkpoint: this run's checkpoint file; resume: continue from it when it exists;
    device: where models, walkers and data live; progress: show progress bars (None: tqdm's default, False:
    hidden); data_dir: the data directory (None: ``$EBMLAB_DATA``); collective: the process group of a
    distributed run; compile: run the walkers' Langevin steps compiled (changes rounding only).
    """

    seed: int
    out: Path
    checkpoint: Path
    resume: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    progress: bool | None = None
    data_dir: str | None = None
    collective: Collective = LOCAL
    compile: bool = False

    def __post_init__(self) -> None:
        check_int("seed", self.seed, 0)
        if not isinstance(self.device, torch.device):
            raise TypeError(f"device must be a torch.device (see resolve_device), got {self.device!r}")
