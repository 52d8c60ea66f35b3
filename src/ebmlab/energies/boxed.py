"""A network energy on a box, with a soft wall and a temperature: V(x) = (U_net(x) + wall(x)) / T.

Pixel-space EBMs keep their samples near the pixel box [-1, 1]^D.  Per-pixel rejection of moves
that leave the box is not in the Jarzynski weight formula and breaks its exactness, so the box is
enforced by a fixed soft wall (kappa/2) sum_p relu(|x_p| - 1)^2, part of the energy.  Walkers that
move with drift step h and noise std sigma sample exp(-U/T) with T = sigma^2 / (2h); the module
returns V = U/T so that the standard ULA kernel with step sigma^2/2 targets it exactly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..estimators import Estimate, importance_sampling


class BoxedTemperedEnergy(nn.Module):
    """V(x) = (U_net(x) + (kappa/2) sum_p relu(|x_p| - 1)^2) / T for inputs (N, *event); returns (N,).

    net: module mapping (N, *event) -> (N,) in U units; temperature: T > 0; wall: kappa >= 0 (U units).
    """

    def __init__(self, net: nn.Module, temperature: float, wall: float):
        super().__init__()
        if not temperature > 0 or not wall >= 0:
            raise ValueError(f"need temperature > 0 and wall >= 0, got {temperature}, {wall}")
        self.net, self.temperature, self.wall = net, float(temperature), float(wall)

    def base_energy(self, x: Tensor) -> Tensor:
        """U(x) in U units (network plus wall), (N,)."""
        outside = torch.relu(x.abs() - 1.0).flatten(1)
        return self.net(x) + 0.5 * self.wall * outside.square().sum(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.base_energy(x) / self.temperature


@torch.no_grad()
def box_log_z(
    energy: nn.Module, event_shape: tuple[int, ...], n: int, generator: torch.Generator, batch: int = 256
) -> Estimate:
    """Importance-sampling estimate of log of the box-restricted integral of exp(-V) over [-1, 1]^D,
    from n uniform draws on the box (proposal density 2^-D); log Z in nats with its standard error.

    Only a rough value for high D (the ESS is then tiny): enough as the log Z_0 reference from which
    changes of the cross-entropy are tracked, not as an absolute log Z.
    """
    if n < 2:
        raise ValueError(f"need at least 2 uniform draws, got n={n}")
    u = torch.rand(n, *event_shape, generator=generator, device=generator.device) * 2 - 1
    v = torch.cat([energy(u[i : i + batch]) for i in range(0, n, batch)]).double()
    log_q = torch.full_like(v, -math.prod(event_shape) * math.log(2.0))
    return importance_sampling(-v, log_q)
