"""Neural-network energies: an MLP with an optional fixed Gaussian confinement term, and the small CNN
energy used for 28x28 images."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn


class MLPEnergy(nn.Module):
    """U(x) = net(x) + |x|^2 / (2 c^2), where the confinement term (std c) is optional and fixed.

    With ``zero_init_output=True`` (the default when a confinement is set) the last layer starts at
    zero, so the initial model is exactly N(0, c^2 I) and :meth:`initial_log_z` is its exact log Z:
    the starting point that Jarzynski-weighted training needs.
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (128, 128),
        activation: Callable[[], nn.Module] = nn.SiLU,
        confinement_std: float | None = None,
        zero_init_output: bool | None = None,
    ):
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if confinement_std is not None and not confinement_std > 0:
            raise ValueError(f"confinement_std must be positive, got {confinement_std}")
        widths = [dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), activation()]
        out = nn.Linear(widths[-1], 1)
        if zero_init_output if zero_init_output is not None else confinement_std is not None:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)
        self.dim = dim
        self.confinement_std = confinement_std

    def forward(self, x: Tensor) -> Tensor:
        u = self.net(x).squeeze(-1)
        if self.confinement_std is not None:
            u = u + 0.5 * (x * x).sum(-1) / self.confinement_std**2
        return u

    def initial_log_z(self) -> float:
        """log Z of the confinement Gaussian, (d/2) log(2 pi c^2): the model's exact log Z while the
        output layer is zero (at initialisation)."""
        if self.confinement_std is None:
            raise ValueError("initial_log_z needs a confinement term: construct with confinement_std=c")
        return 0.5 * self.dim * math.log(2 * math.pi * self.confinement_std**2)

    @torch.no_grad()
    def sample_initial(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:
        """Exact draws from the initial model N(0, c^2 I) (valid while the output layer is zero), on the
        generator's device."""
        self.initial_log_z()  # refuses an energy without confinement
        assert self.confinement_std is not None
        return self.confinement_std * torch.randn(
            n, self.dim, generator=generator, dtype=dtype, device=generator.device
        )


class ConvEnergy(nn.Module):
    """CNN energy for (N, 1, 28, 28) images in [-1, 1] (the MNIST study's architecture).

    Conv(1->c,k5,s2,p4) -> Conv(c->2c,k3,s2) -> Conv(2c->4c,k3,s2) -> Conv(4c->4c,k3,s2), SiLU after
    each, then Linear(4c*4 -> 4c) -> SiLU -> Linear(4c -> 1).  c = 16 gives the published widths.
    """

    def __init__(self, channels: int = 16):
        super().__init__()
        c = channels
        act = nn.SiLU
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 5, stride=2, padding=4),
            act(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            act(),
            nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1),
            act(),
            nn.Conv2d(4 * c, 4 * c, 3, stride=2, padding=1),
            act(),
            nn.Flatten(),
            nn.Linear(4 * c * 4, 4 * c),
            act(),
            nn.Linear(4 * c, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"ConvEnergy expects images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.net(x).squeeze(-1)
