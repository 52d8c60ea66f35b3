"""The latent-variable model shared by LEBM and DAMC: generator, latent EBM prior, observation noise.

p(x, z) = p_alpha(z) p_beta(x | z) with p_alpha(z) = exp(-E_alpha(z)) N(z; 0, I) / Z(alpha) and
p_beta(x | z) = N(g_beta(z), sigma^2 I).  All energies are in nats and return one value per sample:

    U_prior(z)     = E_alpha(z) + |z|^2 / 2
    U_post(z; x)   = |x - g_beta(z)|^2 / (2 sigma^2) + U_prior(z)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ..energies.networks import MLPEnergy
from ..sampling.langevin import EnergyFn


def _check_latent(z: Tensor, latent_dim: int, who: str) -> None:
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(
            f"{who} expects latents of shape (N, {latent_dim}), got {tuple(z.shape)}: "
            "make the latent size of the data, generator, prior and sampler agree"
        )


class ConvGenerator(nn.Module):
    """Deconvolutional generator for 28x28 images in [-1, 1]: (N, d) -> (N, 1, 28, 28).

    ConvT d -> 8ngf (7x7) -> 4ngf (14x14) -> 2ngf (28x28) -> conv 3x3 -> 1, LeakyReLU(0.2), tanh,
    Xavier-normal weights, no normalisation (DAMC's MNIST generator is ngf = 128).
    """

    def __init__(self, latent_dim: int, ngf: int = 64, leak: float = 0.2):
        super().__init__()
        if latent_dim < 1 or ngf < 1:
            raise ValueError(f"latent_dim and ngf must be >= 1, got {latent_dim}, {ngf}")
        self.latent_dim = latent_dim
        self.out_shape = (1, 28, 28)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 8 * ngf, 7, 1, 0),
            nn.LeakyReLU(leak),
            nn.ConvTranspose2d(8 * ngf, 4 * ngf, 4, 2, 1),
            nn.LeakyReLU(leak),
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 4, 2, 1),
            nn.LeakyReLU(leak),
            nn.Conv2d(2 * ngf, 1, 3, 1, 1),
            nn.Tanh(),
        )
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, z: Tensor) -> Tensor:
        _check_latent(z, self.latent_dim, "ConvGenerator")
        return self.net(z[:, :, None, None])


class MLPGenerator(nn.Module):
    """MLP generator for toy data: (N, d) -> (N, out_dim)."""

    def __init__(
        self,
        latent_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (128, 128),
        activation: Callable[[], nn.Module] = nn.ReLU,
    ):
        super().__init__()
        if latent_dim < 1 or out_dim < 1:
            raise ValueError(f"latent_dim and out_dim must be >= 1, got {latent_dim}, {out_dim}")
        widths = [latent_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), activation()]
        self.net = nn.Sequential(*layers[:-1])
        self.latent_dim = latent_dim
        self.out_shape = (out_dim,)

    def forward(self, z: Tensor) -> Tensor:
        _check_latent(z, self.latent_dim, "MLPGenerator")
        return self.net(z)


class LatentEBMPrior(nn.Module):
    """Energy-based prior on z relative to N(0, I): ``energy(z)`` = E_alpha(z), ``forward(z)`` = U_prior(z).

    E_alpha is an MLP d -> hidden -> 1 with LeakyReLU(leak) (DAMC: 200-200, leak 0.2), or with the
    ``activation`` module factory when given (the official LEBM code: ``nn.GELU``).  With
    ``zero_init_output`` the last layer starts at zero, so E_alpha = 0 and the initial prior is exactly
    N(0, I) with log Z_alpha = 0 (what the Jarzynski-weighted prior walkers start from).
    """

    def __init__(
        self,
        latent_dim: int,
        hidden: Sequence[int] = (200, 200),
        leak: float = 0.2,
        activation: Callable[[], nn.Module] | None = None,
        zero_init_output: bool = False,
    ):
        super().__init__()
        act = activation if activation is not None else lambda: nn.LeakyReLU(leak)
        self.mlp = MLPEnergy(latent_dim, hidden, activation=act, zero_init_output=zero_init_output)
        self.latent_dim = latent_dim

    def energy(self, z: Tensor) -> Tensor:
        """E_alpha(z), (N,) nats."""
        _check_latent(z, self.latent_dim, "LatentEBMPrior")
        return self.mlp(z)

    def forward(self, z: Tensor) -> Tensor:
        """U_prior(z) = E_alpha(z) + |z|^2 / 2, (N,) nats."""
        return self.energy(z) + 0.5 * z.square().sum(1)


class GaussianPrior(nn.Module):
    """The N(0, I) prior (E_alpha = 0, no parameters): for fixed-prior models such as the toy."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def energy(self, z: Tensor) -> Tensor:
        _check_latent(z, self.latent_dim, "GaussianPrior")
        return z.new_zeros(z.shape[0])

    def forward(self, z: Tensor) -> Tensor:
        return self.energy(z) + 0.5 * z.square().sum(1)


class LatentModel(nn.Module):
    """Generator + latent prior + observation noise sigma (a fixed float, used only by Langevin).

    generator: (N, d) -> (N, *x_shape); prior: module with ``energy(z)`` (E_alpha) and ``forward`` (U_prior).
    """

    prior: LatentEBMPrior | GaussianPrior

    def __init__(self, generator: nn.Module, prior: LatentEBMPrior | GaussianPrior, sigma: float):
        super().__init__()
        gd, pd = getattr(generator, "latent_dim", None), getattr(prior, "latent_dim", None)
        if gd is None or pd is None:
            raise ValueError("generator and prior must expose an integer attribute latent_dim")
        if gd != pd:
            raise ValueError(f"latent size mismatch: generator takes d={gd}, prior has d={pd}; use the same d")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive finite float, got {sigma!r}")
        self.generator, self.prior, self.sigma = generator, prior, float(sigma)
        self.latent_dim = int(gd)

    def check_x(self, x: Tensor) -> None:
        shape = tuple(getattr(self.generator, "out_shape", x.shape[1:]))
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"observations must have shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}")

    def sse(self, x: Tensor, z: Tensor) -> Tensor:
        """Per-sample squared error |x - g(z)|^2 summed over pixels, (N,)."""
        return (x - self.generator(z)).flatten(1).square().sum(1)

    def prior_energy(self, z: Tensor) -> Tensor:
        """U_prior(z), (N,) nats."""
        return self.prior(z)

    def posterior_energy(self, x: Tensor, sigma: float | None = None) -> EnergyFn:
        """U_post(. ; x) as a callable z (N, d) -> (N,) nats; ``sigma`` overrides the model's."""
        self.check_x(x)
        s2 = (self.sigma if sigma is None else sigma) ** 2

        def energy(z: Tensor) -> Tensor:
            return self.sse(x, z) / (2.0 * s2) + self.prior(z)

        return energy

    def anomaly_score(self, x: Tensor, z: Tensor) -> Tensor:
        """|x - g(z)|^2 + E_alpha(z) + |z|^2/2: the negative log joint with sigma^2 = 1/2 up to constants, (N,)."""
        return self.sse(x, z) + self.prior(z)
