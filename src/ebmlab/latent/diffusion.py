"""Conditional latent diffusion model q_phi(z | x) (and q_phi(z) with a null condition) for DAMC.

Variance-preserving forward process z_t = alpha_t z_0 + sigma_t eps with alpha_t^2 = sigmoid(lambda_t),
sigma_t^2 = sigmoid(-lambda_t) and the cosine log-SNR schedule lambda(t) = -2 log tan(a t + b), which runs
from lambda_max at t = 0 to lambda_min at t = 1.  The denoiser predicts eps; the sampler is ancestral
(DDPM) with the "large" variance sigma^2_{t|s} = (1 - SNR_t / SNR_s) sigma_t^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LAMBDA_MIN, LAMBDA_MAX = -5.1, 9.8


@dataclass(frozen=True)
class CosineLogSNR:
    """lambda(t) = -2 log tan(a t + b) with b = arctan(exp(-lambda_max/2)), a = arctan(exp(-lambda_min/2)) - b."""

    lambda_min: float = LAMBDA_MIN
    lambda_max: float = LAMBDA_MAX

    def __post_init__(self) -> None:
        if not self.lambda_min < self.lambda_max:
            raise ValueError(f"need lambda_min < lambda_max, got {self.lambda_min}, {self.lambda_max}")

    @property
    def b(self) -> float:
        return math.atan(math.exp(-self.lambda_max / 2))

    @property
    def a(self) -> float:
        return math.atan(math.exp(-self.lambda_min / 2)) - self.b

    def logsnr(self, t: Tensor) -> Tensor:
        """lambda(t) for t in [0, 1] (any shape)."""
        return -2.0 * torch.log(torch.tan(self.a * t + self.b))


def alpha_sigma(lam: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha, sigma) with alpha^2 = sigmoid(lambda), sigma^2 = sigmoid(-lambda)."""
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


def predict_x0(z_t: Tensor, eps_hat: Tensor, lam: Tensor) -> Tensor:
    """x0_hat = (z_t - sigma_t eps_hat) / alpha_t; ``lam`` broadcastable to z_t."""
    alpha, sigma = alpha_sigma(lam)
    return (z_t - sigma * eps_hat) / alpha


def ddpm_posterior(z_t: Tensor, x0_hat: Tensor, lam_t: Tensor, lam_s: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of q(z_s | z_t, x0_hat) with the "large" variance sigma^2_{t|s}, s < t.

    mean = (alpha_{t|s} sigma_s^2 / sigma_t^2) z_t + (alpha_s sigma^2_{t|s} / sigma_t^2) x0_hat,
    alpha_{t|s} = alpha_t / alpha_s, sigma^2_{t|s} = (1 - SNR_t / SNR_s) sigma_t^2 = -expm1(lam_t - lam_s) sigma_t^2.
    """
    a_t, s_t = alpha_sigma(lam_t)
    a_s, s_s = alpha_sigma(lam_s)
    var_ts = -torch.expm1(lam_t - lam_s) * s_t**2
    mean = (a_t / a_s) * (s_s**2 / s_t**2) * z_t + (a_s * var_ts / s_t**2) * x0_hat
    return mean, var_ts


def time_grid(n_steps: int, device: torch.device | None = None) -> Tensor:
    """The sampler's times t_i = i / (n - 1), i = n - 1, ..., 0 (descending), (n,) float32."""
    if n_steps < 2:
        raise ValueError(f"the sampler needs at least 2 diffusion steps, got {n_steps}")
    return torch.arange(n_steps - 1, -1, -1, device=device, dtype=torch.float32) / (n_steps - 1)


def sinusoidal_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Transformer-style embedding of scalars t (N,) -> (N, dim), of scale * t."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=t.dtype) / max(half - 1, 1))
    arg = scale * t[:, None] * freqs[None]
    emb = torch.cat([arg.sin(), arg.cos()], dim=1)
    return F.pad(emb, (0, dim - 2 * half))


class GatedBlock(nn.Module):
    """out = Linear(h) * sigmoid(W_g c) + W_b c + Skip(h), c = SiLU(Linear(SiLU(cond)))."""

    def __init__(self, d_in: int, d_out: int, d_cond: int):
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
        self.cond = nn.Sequential(nn.SiLU(), nn.Linear(d_cond, d_out), nn.SiLU())
        self.gate = nn.Linear(d_out, d_out)
        self.bias = nn.Linear(d_out, d_out)
        self.skip = nn.Identity() if d_in == d_out else nn.Linear(d_in, d_out)

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        c = self.cond(cond)
        return self.lin(h) * torch.sigmoid(self.gate(c)) + self.bias(c) + self.skip(h)


class Denoiser(nn.Module):
    """Time-embedded MLP "U-Net" eps_hat(z_t, lambda, x_emb), residual output eps_hat = z_t + net(...).

    Input features [sin(2 pi z B), cos(2 pi z B), z] with learnable B (d, d/2) ~ N(0, 1).  Time: pseudo-time
    arctan(exp(-lambda/2)) / (pi/2) -> sinusoidal(x1000) -> Linear -> SiLU -> Linear (width t_dim).
    Widths with nf: down 32nf, 64nf, 64nf; mid 64nf; up with skip concatenation to 64nf, 32nf, d;
    LeakyReLU(0.01) between blocks (nf = 4 is the DAMC denoiser).
    """

    def __init__(self, latent_dim: int, cond_dim: int, nf: int = 4, t_dim: int = 128):
        super().__init__()
        self.latent_dim, self.t_dim = latent_dim, t_dim
        half = max(1, latent_dim // 2)
        self.B = nn.Parameter(torch.randn(latent_dim, half))
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        dc = t_dim + cond_dim
        w1, w2 = 32 * nf, 64 * nf
        self.down = nn.ModuleList(
            [GatedBlock(2 * half + latent_dim, w1, dc), GatedBlock(w1, w2, dc), GatedBlock(w2, w2, dc)]
        )
        self.mid = GatedBlock(w2, w2, dc)
        self.up = nn.ModuleList(
            [GatedBlock(2 * w2, w2, dc), GatedBlock(2 * w2, w1, dc), GatedBlock(2 * w1, latent_dim, dc)]
        )
        self.act = nn.LeakyReLU(0.01)

    def forward(self, z_t: Tensor, lam: Tensor, x_emb: Tensor) -> Tensor:
        """z_t (N, d), lam (N,), x_emb (N, cond_dim) -> eps_hat (N, d)."""
        proj = 2 * math.pi * z_t @ self.B
        h = torch.cat([proj.sin(), proj.cos(), z_t], dim=1)
        tau = torch.atan(torch.exp(-lam / 2)) / (math.pi / 2)
        cond = torch.cat([self.t_mlp(sinusoidal_embedding(tau, self.t_dim)), x_emb], dim=1)
        skips = []
        for blk in self.down:
            h = self.act(blk(h, cond))
            skips.append(h)
        h = self.act(self.mid(h, cond))
        for i, blk in enumerate(self.up):
            h = blk(torch.cat([h, skips.pop()], dim=1), cond)
            if i < len(self.up) - 1:
                h = self.act(h)
        return z_t + h


class ConvEncoder(nn.Module):
    """Condition encoder for (N, 1, 28, 28) images: strided convs, InstanceNorm, LeakyReLU(0.2) -> (N, out_dim)."""

    def __init__(self, out_dim: int, nif: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, nif, 4, 2, 1),
            nn.LeakyReLU(0.2),  # 14x14
            nn.Conv2d(nif, 2 * nif, 4, 2, 1),
            nn.InstanceNorm2d(2 * nif, affine=True),
            nn.LeakyReLU(0.2),  # 7x7
            nn.Conv2d(2 * nif, 4 * nif, 3, 2, 1),
            nn.InstanceNorm2d(4 * nif, affine=True),
            nn.LeakyReLU(0.2),  # 4x4
            nn.Flatten(),
            nn.Linear(16 * 4 * nif, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPEncoder(nn.Module):
    """Condition encoder for flat observations (N, in_dim) -> (N, out_dim), LeakyReLU(0.2)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (128, 128, 128)):
        super().__init__()
        widths = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


def dropout_mask(n: int, p_mask: float, generator: torch.Generator, device=None) -> Tensor:
    """Condition mask (n,) bool, True (conditional) with probability 1 - p_mask."""
    return torch.rand(n, generator=generator, device=device) >= p_mask


class LatentDiffusion(nn.Module):
    """q_phi(z | x) and, with the stochastic learned null condition MLP(eta), eta ~ N(0, I_d), q_phi(z).

    encoder: maps observations to (N, cond_dim).  n_steps: denoiser calls per sample.  p_mask: probability
    that a training pair uses the null condition (condition dropout).
    """

    def __init__(
        self,
        latent_dim: int,
        encoder: nn.Module,
        cond_dim: int,
        *,
        nf: int = 4,
        t_dim: int = 128,
        null_hidden: int = 128,
        n_steps: int = 100,
        p_mask: float = 0.2,
        schedule: CosineLogSNR = CosineLogSNR(),
    ):
        super().__init__()
        if not 0.0 <= p_mask <= 1.0:
            raise ValueError(f"p_mask must lie in [0, 1], got {p_mask}")
        time_grid(n_steps)  # validates n_steps
        self.latent_dim, self.n_steps, self.p_mask, self.schedule = latent_dim, n_steps, p_mask, schedule
        self.encoder = encoder
        self.null = nn.Sequential(nn.Linear(latent_dim, null_hidden), nn.SiLU(), nn.Linear(null_hidden, cond_dim))
        self.denoiser = Denoiser(latent_dim, cond_dim, nf=nf, t_dim=t_dim)

    def condition(self, n: int, x: Tensor | None, mask: Tensor | None, generator: torch.Generator) -> Tensor:
        """Condition embeddings (n, cond_dim): encoder(x) where mask is True, the null token elsewhere.

        x None means all unconditional; mask None means all conditional (when x is given).
        """
        p = next(self.parameters())
        eta = torch.randn(n, self.latent_dim, generator=generator, device=p.device, dtype=p.dtype)
        null = self.null(eta)
        if x is None:
            return null
        if x.shape[0] != n:
            raise ValueError(f"condition has {x.shape[0]} observations for {n} latents")
        enc = self.encoder(x)
        return enc if mask is None else torch.where(mask[:, None], enc, null)

    def loss(self, z0: Tensor, x: Tensor | None, generator: torch.Generator, mask: Tensor | None = None) -> Tensor:
        """DDPM eps-loss: mean over the batch of 1/2 |eps - eps_hat(z_t, lambda_t, c)|^2 summed over dims.

        With ``mask`` None and x given, the mask is drawn as Bernoulli(1 - p_mask) (True = conditional).
        """
        n = z0.shape[0]
        if z0.dim() != 2 or z0.shape[1] != self.latent_dim:
            raise ValueError(f"latent size mismatch: diffusion model has d={self.latent_dim}, got {tuple(z0.shape)}")
        if x is not None and mask is None:
            mask = dropout_mask(n, self.p_mask, generator, z0.device)
        cond = self.condition(n, x, mask, generator)
        t = torch.rand(n, generator=generator, device=z0.device, dtype=z0.dtype)
        eps = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
        lam = self.schedule.logsnr(t)
        alpha, sigma = alpha_sigma(lam[:, None])
        eps_hat = self.denoiser(alpha * z0 + sigma * eps, lam, cond)
        return 0.5 * (eps - eps_hat).square().sum(1).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator, x: Tensor | None = None, n_steps: int | None = None) -> Tensor:
        """n latents (n, d): from q_phi(z | x) if x (n, ...) is given, else from q_phi(z)."""
        p = next(self.parameters())
        cond = self.condition(n, x, None, generator)
        return ancestral_sample(
            lambda z, lam: self.denoiser(z, lam, cond),
            (n, self.latent_dim),
            self.schedule,
            n_steps or self.n_steps,
            generator,
            device=p.device,
            dtype=p.dtype,
        )


def ancestral_sample(
    eps_fn,
    shape: tuple[int, int],
    schedule: CosineLogSNR,
    n_steps: int,
    generator: torch.Generator,
    device=None,
    dtype=torch.float32,
) -> Tensor:
    """DDPM sampling with ``n_steps`` calls of eps_fn(z_t (N, d), lambda (N,)) on the grid of :func:`time_grid`.

    Starts at z ~ N(0, I) (t = 1); each call but the last draws z_s ~ N(mean, sigma^2_{t|s}); the last call
    (t = 0) returns x0_hat without noise.
    """
    ts = time_grid(n_steps, device=device).to(dtype)
    lams = schedule.logsnr(ts)
    z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
    for i in range(n_steps - 1):
        x0 = predict_x0(z, eps_fn(z, lams[i].expand(shape[0])), lams[i])
        mean, var = ddpm_posterior(z, x0, lams[i], lams[i + 1])
        z = mean + var.sqrt() * torch.randn(shape, generator=generator, device=device, dtype=dtype)
    return predict_x0(z, eps_fn(z, lams[-1].expand(shape[0])), lams[-1])


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, rho: float) -> None:
    """target <- rho * source + (1 - rho) * target, parameter by parameter (buffers copied)."""
    if not 0.0 < rho <= 1.0:
        raise ValueError(f"EMA rate rho must lie in (0, 1], got {rho}")
    for pt, ps in zip(target.parameters(), source.parameters()):
        pt.lerp_(ps, rho)
    for bt, bs in zip(target.buffers(), source.buffers()):
        bt.copy_(bs)
