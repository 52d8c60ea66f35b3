"""The 2-D toy posterior of the DAMC code: a fixed random MLP generator, pinwheel latents, N(0, I) prior.

Target p(z | x) ∝ N(z; 0, I) N(x; G(z), 0.25^2 I); no EBM and no generator learning, only the amortised
sampler is trained.  Ground truth comes from a long-run Langevin reference.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .models import GaussianPrior, LatentModel, MLPGenerator

TOY_SIGMA = 0.25


def random_mlp_generator(seed: int, hidden: tuple[int, ...] = (128, 128, 128)) -> MLPGenerator:
    """Fixed random MLP G: R^2 -> R^2 with ReLU, weights ~ N(0, 0.2^2), biases ~ N(0, 0.1^2); frozen."""
    g = torch.Generator().manual_seed(seed)
    net = MLPGenerator(2, 2, hidden, activation=nn.ReLU)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return net.requires_grad_(False)


def toy_model(seed: int) -> LatentModel:
    """LatentModel(random_mlp_generator(seed), N(0, I) prior, sigma = 0.25)."""
    return LatentModel(random_mlp_generator(seed), GaussianPrior(2), TOY_SIGMA)


def pinwheel(
    n: int,
    generator: torch.Generator,
    arms: int = 2,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    rate: float = 0.25,
) -> Tensor:
    """n points (n, 2) of a pinwheel with ``arms`` arms: a point at radius ~ 1 + radial noise on arm k is
    rotated by 2 pi k / arms + rate * exp(radius).  The points lie on the generator's device."""
    dev = generator.device
    scale, shift = torch.tensor([radial_std, tangential_std], device=dev), torch.tensor([1.0, 0], device=dev)
    feats = torch.randn(n, 2, generator=generator, device=dev) * scale + shift
    arm = torch.randint(arms, (n,), generator=generator, device=dev)
    angle = 2 * math.pi * arm / arms + rate * torch.exp(feats[:, 0])
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([c * feats[:, 0] - s * feats[:, 1], s * feats[:, 0] + c * feats[:, 1]], dim=1)


def observe(model: LatentModel, z: Tensor, generator: torch.Generator) -> Tensor:
    """x = G(z) + sigma eps, (n, 2)."""
    with torch.no_grad():
        return model.generator(z) + model.sigma * torch.randn(z.shape, generator=generator, device=z.device)


def reconstruction_error(model: LatentModel, x: Tensor, z: Tensor) -> float:
    """sum |G(z) - x|^2 / n: the toy's error of posterior samples z for observations x."""
    with torch.no_grad():
        return float(model.sse(x, z).mean())


def kde_grid(z: Tensor, bandwidth: float = 0.15, lim: float = 4.0, n_grid: int = 100) -> np.ndarray:
    """Gaussian KDE of points z (n, 2) on an n_grid x n_grid grid over [-lim, lim]^2 (rows = second coordinate)."""
    g = torch.linspace(-lim, lim, n_grid, dtype=torch.float64)
    gx, gy = torch.meshgrid(g, g, indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    d2 = torch.cdist(grid, z.detach().cpu().double()).square()
    dens = torch.exp(-d2 / (2 * bandwidth**2)).mean(1) / (2 * math.pi * bandwidth**2)
    return dens.reshape(n_grid, n_grid).numpy()


def mmd_rbf(a: Tensor, b: Tensor, bandwidth: float = 0.5) -> float:
    """Unbiased squared MMD between samples a (n, d) and b (m, d) with an RBF kernel of the given bandwidth."""

    def k(u: Tensor, v: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(u.double(), v.double()).square() / (2 * bandwidth**2))

    n, m = a.shape[0], b.shape[0]
    kaa = (k(a, a).sum() - n) / (n * (n - 1))
    kbb = (k(b, b).sum() - m) / (m * (m - 1))
    return float(kaa + kbb - 2 * k(a, b).mean())


def train_amortizer(
    model: LatentModel,
    sampler,
    z_train: Tensor,
    iters: int,
    generator: torch.Generator,
    callback=None,
    progress: bool | None = None,
) -> list[dict[str, float]]:
    """Fit a DAMC sampler's posterior amortiser on the fixed toy model (no theta learning).

    Each iteration: x = G(z_train) + sigma eps (fresh noise, same latents), z0 ~ Q_bar(z | x), posterior
    Langevin from z0, then ``sampler.learn``.  ``callback(iteration, row)`` runs after each iteration.
    """
    history = []
    for it in tqdm(range(iters), desc="toy damc", disable=progress is False, leave=False):
        x = observe(model, z_train, generator)
        _, z_pos = sampler.posterior_chains(model, x, generator)
        row = {"step": it, **sampler.learn(x, z_pos, generator)}
        if callback is not None:
            callback(it + 1, row)
        history.append(row)
    return history
