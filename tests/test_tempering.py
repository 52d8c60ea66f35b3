"""Preconditioned moves and pilot-adapted tempering (:mod:`ebmlab.sampling.tempering`): the affine map, invariance and
mixing of preconditioned MALA on an ill-conditioned Gaussian, the conditional-ESS temperature search, and
adaptive AIS against closed-form log Z (tolerances in standard errors)."""

import math

import pytest
import torch
from torch import nn

from ebmlab.estimators import ais
from ebmlab.sampling.langevin import LangevinState, init_state
from ebmlab.sampling.preconditioner import Preconditioner
from ebmlab.sampling.smc import Move, advance, start
from ebmlab.sampling.tempering import Tempering, next_temperature
from ebmlab.sampling.walkers import conditional_ess_fraction

D = torch.float64
STDS = torch.tensor([0.05, 0.1, 0.2, 0.4, 0.7, 1.0], dtype=D)  # condition number 400


class DiagonalGaussian(nn.Module):
    """U(x) = |(x - mean) / std|^2 / 2, log Z = sum log std + (d/2) log 2 pi."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return 0.5 * ((x - self.mean) / self.std).square().sum(1)

    def log_z(self) -> float:
        return float(self.std.log().sum()) + 0.5 * self.std.numel() * math.log(2 * math.pi)

    def sample(self, n, g):
        return self.mean + self.std * torch.randn(n, self.std.numel(), generator=g, dtype=D)


def test_preconditioner_maps_states_and_moments():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(500, 4, generator=g, dtype=D), torch.rand(500, generator=g, dtype=D)
    pre = Preconditioner.from_moments(x, w, ridge=0.0)
    wn = w / w.sum()
    mean = wn @ x
    cov = (x - mean).T @ ((x - mean) * wn[:, None])
    assert torch.allclose(pre.shift, mean) and torch.allclose(pre.chol @ pre.chol.T, cov)
    target = DiagonalGaussian(torch.zeros(4, dtype=D), torch.ones(4, dtype=D))
    state = init_state(target, x[:7])
    u = pre.to_u(state)
    assert torch.allclose(u.x, torch.linalg.solve(pre.chol, (x[:7] - mean).T).T)
    # the gradient in u is the gradient of the energy in u
    assert torch.allclose(u.grad, init_state(pre.energy(target), u.x).grad)
    back = pre.to_x(u)
    assert (
        torch.allclose(back.x, state.x) and torch.allclose(back.grad, state.grad) and torch.equal(back.energy, u.energy)
    )
    with pytest.raises(ValueError, match=r"walkers \(N, 4\)"):
        pre.to_u(LangevinState(torch.zeros(3, 5, dtype=D), torch.zeros(3, dtype=D), torch.zeros(3, 5, dtype=D)))
    with pytest.raises(ValueError, match="positive diagonal"):
        Preconditioner(torch.zeros(2, dtype=D), torch.zeros(2, 2, dtype=D))


def test_preconditioned_mala_keeps_an_ill_conditioned_gaussian_and_mixes_it():
    """Exact draws stay exact (moments within SE); from a point start the preconditioned chains reach the
    widest direction's variance in 30 steps, isotropic MALA at its best step does not."""
    g = torch.Generator().manual_seed(1)
    target = DiagonalGaussian(torch.linspace(-1, 1, 6, dtype=D), STDS)
    pre = Preconditioner(target.mean, torch.diag(STDS))
    n = 4000
    walkers = start(target, target.sample(n, g))
    moved, info = advance(walkers, target, Move("mala", 0.7, n_steps=10), g, weighted=False, precondition=pre)
    z = (moved.x - target.mean) / STDS
    assert float(info.accept_rate) > 0.5
    assert float(z.mean(0).abs().max()) < 4 / math.sqrt(n)
    assert float((z.var(0) - 1).abs().max()) < 4 * math.sqrt(2 / n)

    point = start(target, target.mean.expand(n, 6).clone())
    pre_run, _ = advance(point, target, Move("mala", 1.0, n_steps=30), g, weighted=False, precondition=pre)
    iso_run, _ = advance(point, target, Move("mala", 0.002, n_steps=30), g, weighted=False)
    assert float(pre_run.x[:, -1].var()) > 0.8
    assert float(iso_run.x[:, -1].var()) < 0.3


def test_next_temperature_meets_the_conditional_ess_target():
    g = torch.Generator().manual_seed(2)
    log_w = torch.randn(300, generator=g, dtype=D)
    assert next_temperature(log_w, torch.full((300,), 5.0, dtype=D), 0.3, 0.9) == 1.0  # constant work: no loss
    work = 50 * torch.randn(300, generator=g, dtype=D)
    b = next_temperature(log_w, work, 0.2, 0.9)
    assert 0.2 < b < 1.0
    assert float(conditional_ess_fraction(log_w, -(b - 0.2) * work)) == pytest.approx(0.9, abs=1e-6)
    assert float(conditional_ess_fraction(log_w, -(b + 1e-4 - 0.2) * work)) < 0.9


@pytest.mark.parametrize("reverse", [False, True])
def test_adaptive_ais_matches_the_closed_form_on_an_ill_conditioned_target(reverse):
    """N(0, I) <-> a shifted Gaussian with standard deviations 0.05 to 1 in d = 6: log Z within 4 SE, on a
    schedule adapted by the pilot (ending at beta = 1, one step size per temperature)."""
    g = torch.Generator().manual_seed(3)
    base = DiagonalGaussian(torch.zeros(6, dtype=D), torch.ones(6, dtype=D))
    target = DiagonalGaussian(torch.linspace(-1, 1, 6, dtype=D), STDS)
    src = target if reverse else base  # reverse: from exact target draws back to N(0, I), log Z_1 = log Z_0 - ...
    est = ais(
        base,
        target,
        src.sample(256, g),
        base.log_z(),
        Tempering(cess_target=0.9, pilot_steps=2),
        move=Move("mala", 0.5, n_steps=4),
        generator=g,
        ess_threshold=0.5,
        reverse=reverse,
        pilot=src.sample(256, g),
    )
    exact = target.log_z()
    assert abs(float(est.log_z) - exact) < 4 * float(est.se), (float(est.log_z), exact, float(est.se))
    betas = est.diagnostics["betas"]
    assert betas[-1] == 1.0 and len(betas) == est.diagnostics["n_temperatures"] == len(est.diagnostics["step_sizes"])
    assert all(a < b for a, b in zip(betas, betas[1:]))
    assert 0.4 < est.diagnostics["acceptance"] < 0.9


def test_the_schedule_comes_from_the_pilot_alone():
    """The estimating walkers never influence the kernels: other x, the same schedule."""
    base = DiagonalGaussian(torch.zeros(6, dtype=D), torch.ones(6, dtype=D))
    target = DiagonalGaussian(torch.linspace(-1, 1, 6, dtype=D), STDS)
    pilot = base.sample(64, torch.Generator().manual_seed(4))
    runs = []
    for seed in (5, 6):
        x = base.sample(64, torch.Generator().manual_seed(seed))
        est = ais(
            base,
            target,
            x,
            0.0,
            Tempering(),
            move=Move("mala", 0.5, n_steps=2),
            generator=torch.Generator().manual_seed(7),
            pilot=pilot,
        )
        runs.append(est.diagnostics)
    assert runs[0]["betas"] == runs[1]["betas"] and runs[0]["step_sizes"] == runs[1]["step_sizes"]


def test_adaptive_ais_refuses_bad_input():
    base = DiagonalGaussian(torch.zeros(3, dtype=D), torch.ones(3, dtype=D))
    g = torch.Generator().manual_seed(8)
    x = torch.randn(16, 3, generator=g, dtype=D)
    kw = dict(move=Move("mala", 0.5), generator=g)
    with pytest.raises(ValueError, match="needs pilot="):
        ais(base, base, x, 0.0, Tempering(), **kw)
    with pytest.raises(ValueError, match="pilot must have the shape of x"):
        ais(base, base, x, 0.0, Tempering(), pilot=x[:8], **kw)
    with pytest.raises(ValueError, match="only used with an adaptive schedule"):
        ais(base, base, x, 0.0, 10, pilot=x, **kw)
    with pytest.raises(ValueError, match="flat walkers"):
        flat = DiagonalGaussian(torch.zeros(3, dtype=D), torch.ones(3, dtype=D))
        ais(lambda y: flat(y.flatten(1)), lambda y: flat(y.flatten(1)), x.view(16, 3, 1), 0.0, Tempering(),
            pilot=x.view(16, 3, 1), **kw)  # fmt: skip
    for bad in (dict(cess_target=1.0), dict(accept_target=0.0), dict(pilot_steps=0), dict(max_temperatures=True)):
        with pytest.raises(ValueError):
            Tempering(**bad)
    with pytest.raises(ValueError, match="max_temperatures=2"):
        far = DiagonalGaussian(torch.full((3,), 30.0, dtype=D), torch.full((3,), 0.01, dtype=D))
        ais(base, far, x, 0.0, Tempering(max_temperatures=2), pilot=x, **kw)
    with pytest.raises(ValueError, match="cannot run compiled"):
        advance(start(base, x), base, Move("mala", 0.1, compile=True), g,
                precondition=Preconditioner(torch.zeros(3, dtype=D), torch.eye(3, dtype=D)))  # fmt: skip
