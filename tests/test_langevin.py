"""Langevin kernels: the log-weight increment against closed forms and an independent MALA ratio."""

import math

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.sampling import energy_and_grad, init_state, mala, transition_log_weight, ula, ula_propose

D = torch.float64


def alpha(u_x, g_x, x, y, h):
    """Carbone et al.'s alpha_k(x, y) = U(x) + 1/2 (y - x).g(x) + h/4 |g(x)|^2."""
    return u_x + 0.5 * ((y - x) * g_x).sum(1) + 0.25 * h * (g_x * g_x).sum(1)


def gaussians(seed=0, d=3):
    g = torch.Generator().manual_seed(seed)
    a = Gaussian(torch.randn(d, generator=g, dtype=D), torch.rand(d, generator=g, dtype=D) + 0.5)
    b = Gaussian(torch.randn(d, generator=g, dtype=D), torch.rand(d, generator=g, dtype=D) + 0.5)
    return a, b, g


def test_energy_and_grad_matches_closed_form():
    a, _, g = gaussians()
    x = torch.randn(7, 3, generator=g, dtype=D)
    u, grad = energy_and_grad(a, x)
    sigma2 = torch.exp(2 * a.log_std.detach())
    torch.testing.assert_close(grad, (x - a.mean.detach()) / sigma2, rtol=0, atol=1e-14)
    torch.testing.assert_close(u, 0.5 * ((x - a.mean.detach()) ** 2 / sigma2).sum(1), rtol=0, atol=1e-14)
    assert a.mean.grad is None  # parameters untouched


def test_energy_and_grad_rejects_non_per_sample_energy():
    with pytest.raises(ValueError, match="one value per sample"):
        energy_and_grad(lambda x: x.sum(), torch.zeros(4, 2))


@pytest.mark.parametrize("h", [0.01, 0.5])
def test_increment_equals_alpha_form(h):
    """With noise sqrt(2h), the kernel-density increment is the paper's alpha form (theta changes)."""
    old, new, g = gaussians()
    x = torch.randn(100, 3, generator=g, dtype=D)
    u_x, g_x = energy_and_grad(old, x)
    y = ula_propose(x, g_x, h, g)
    u_y, g_y = energy_and_grad(new, y)
    got = transition_log_weight(x, y, u_x, g_x, u_y, g_y, h)
    want = alpha(u_x, g_x, x, y, h) - alpha(u_y, g_y, y, x, h)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_fixed_theta_increment_is_mala_log_ratio():
    """theta fixed: dA = log[pi(y) q(y->x) / (pi(x) q(x->y))] with normalised densities from torch.distributions."""
    target, _, g = gaussians(1)
    h = 0.3
    state = init_state(target, torch.randn(200, 3, generator=g, dtype=D))
    new, info = ula(state, target, h, g)
    inc = info.increment
    x, y = state.x, new.x
    pi = torch.distributions.Normal(target.mean.detach(), torch.exp(target.log_std.detach()))

    def log_q(a, b):  # ULA kernel density a -> b
        mean = a - h * (a - target.mean.detach()) / torch.exp(2 * target.log_std.detach())
        return torch.distributions.Normal(mean, math.sqrt(2 * h)).log_prob(b).sum(1)

    want = pi.log_prob(y).sum(1) + log_q(y, x) - pi.log_prob(x).sum(1) - log_q(x, y)
    torch.testing.assert_close(inc, want, rtol=0, atol=1e-10)


def test_small_step_increment_tends_to_ais_work():
    """h -> 0: dA -> U_k(X) - U_{k+1}(X)."""
    old, new, g = gaussians(2)
    state = init_state(old, torch.randn(50, 3, generator=g, dtype=D))
    errs = []
    for h in (1e-4, 1e-6):
        inc = ula(state, new, h, g)[1].increment
        errs.append(float((inc - (old(state.x) - new(state.x)).detach()).abs().max()))
    assert errs[1] < errs[0] / 5 and errs[1] < 5e-2


def test_one_energy_evaluation_per_step():
    calls = []
    target, _, g = gaussians()

    def counted(x):
        calls.append(x.shape[0])
        return target(x)

    state = init_state(counted, torch.zeros(10, 3, dtype=D))
    for _ in range(5):
        state, _ = ula(state, counted, 0.1, g)
    assert calls == [10] * 6


def test_weighted_ula_corrects_discretisation_bias():
    """U = x^2/2, h = 0.5, walkers from N(0,1), theta fixed: unweighted ULA drifts to variance
    1/(1 - h/2) = 4/3 while the weighted second moment stays 1 (docs/method.md, section 2)."""
    g = torch.Generator().manual_seed(3)
    target = Gaussian(torch.zeros(1, dtype=D), 1.0)
    n, h = 40_000, 0.5
    state = init_state(target, torch.randn(n, 1, generator=g, dtype=D))
    log_w = torch.zeros(n, dtype=D)
    for _ in range(3):
        state, info = ula(state, target, h, g)
        log_w += info.increment
    x2 = state.x[:, 0] ** 2
    w = torch.softmax(log_w, 0)
    weighted = float((w * x2).sum())
    se_w = float(torch.sqrt((w**2 * (x2 - weighted) ** 2).sum()))
    unweighted = float(x2.mean())
    assert abs(weighted - 1.0) < 4 * se_w
    # after 3 steps from N(0,1) the unweighted variance is 4/3 - (1/3)(1-h)^6 = 1.328 exactly
    expected = 4 / 3 - (1 / 3) * (1 - h) ** 6
    assert abs(unweighted - expected) < 4 * float(x2.std()) / math.sqrt(n)
    torch.testing.assert_close(torch.logsumexp(log_w, 0) - math.log(n), torch.tensor(0.0, dtype=D), atol=4e-2, rtol=0)


def test_mala_leaves_target_invariant():
    g = torch.Generator().manual_seed(4)
    target = Gaussian(torch.tensor([1.0, -2.0], dtype=D), torch.tensor([0.5, 2.0], dtype=D))
    n = 20_000
    state = init_state(target, target.sample(n, g))
    acc = []
    for _ in range(10):
        state, info = mala(state, target, 0.8, g)
        acc.append(float(info.accepted.double().mean()))
    x = state.x
    se = x.std(0) / math.sqrt(n)
    assert ((x.mean(0) - target.mean.detach()).abs() < 5 * se).all()
    var_se = x.var(0) * math.sqrt(2 / n)
    assert ((x.var(0) - torch.tensor([0.25, 4.0], dtype=D)).abs() < 5 * var_se).all()
    assert 0.2 < min(acc) < max(acc) < 1.0


def test_increment_with_other_noise_scale_is_the_kernel_density_ratio():
    """noise_std != sqrt(2h): dA = U_k(x) - U_{k+1}(y) + log q_{k+1}(y->x) - log q_k(x->y) with the
    normalised Gaussian kernel densities of torch.distributions (the note's pitfall, option (a))."""
    old, new, g = gaussians(5)
    h, sigma = 0.2, 0.15
    x = torch.randn(300, 3, generator=g, dtype=D)
    u_x, g_x = energy_and_grad(old, x)
    y = ula_propose(x, g_x, h, g, noise_std=sigma)
    u_y, g_y = energy_and_grad(new, y)

    def log_q(a, grad_a, b):
        return torch.distributions.Normal(a - h * grad_a, sigma).log_prob(b).sum(1)

    want = u_x - u_y + log_q(y, g_y, x) - log_q(x, g_x, y)
    got = transition_log_weight(x, y, u_x, g_x, u_y, g_y, h, noise_std=sigma)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
