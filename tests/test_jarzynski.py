"""The exact Jarzynski identity along a prescribed schedule of Gaussian targets (docs/method.md, section 2).

With X_0 ~ rho_0 and weighted ULA or MALA at a large step (h = 0.5), for every k:
mean(e^{A_k}) = Z_k / Z_0 and weighted means = exact means, up to Monte Carlo error.
"""

import math

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.sampling import log_z_estimate, normalized_weights
from ebmlab.sampling.smc import Move, advance, start

D = torch.float64


def schedule(k_max=12, d=2):
    for k in range(k_max + 1):
        t = k / k_max
        mean = torch.tensor([1.5 * t, -0.5 * t], dtype=D)[:d]
        std = torch.tensor([1.0 + 0.6 * t, 1.0 + 0.3 * math.sin(3 * t)], dtype=D)[:d]
        yield mean, std


@pytest.mark.parametrize("kernel", ["ula", "mala"])
def test_weighted_walkers_reproduce_partition_function_ratios_and_means(kernel):
    """ULA carries the Carbone et al. increment, MALA the AIS work; both are exact for any step size."""
    g = torch.Generator().manual_seed(0)
    n, h = 40_000, 0.5
    targets = list(schedule())
    energy = Gaussian(*targets[0])
    z0 = float(energy.log_z().detach())
    move = Move(kernel, step_size=h)
    walkers = start(energy, energy.sample(n, g), z0)
    for mean, std in targets[1:]:
        with torch.no_grad():  # the "parameter update" theta_k -> theta_{k+1}
            energy.mean.copy_(mean)
            energy.log_std.copy_(std.log())
        walkers, _ = advance(walkers, energy, move, g)
        # mean(e^A) vs Z_k / Z_0, in linear space with its standard error
        ratio = torch.exp(walkers.log_w)
        true_ratio = math.exp(float(energy.log_z().detach()) - z0)
        se = float(ratio.std()) / math.sqrt(n)
        assert abs(float(ratio.mean()) - true_ratio) < 4 * se, (float(ratio.mean()), true_ratio, se)
        assert abs(float(log_z_estimate(walkers)) - float(energy.log_z().detach())) < 4 * se / true_ratio + 1e-12
        # self-normalised weighted mean and its delta-method standard error
        w = normalized_weights(walkers.log_w)
        m = (w[:, None] * walkers.x).sum(0)
        se_m = torch.sqrt((w[:, None] ** 2 * (walkers.x - m) ** 2).sum(0))
        assert ((m - mean).abs() < 4 * se_m).all(), (m, mean, se_m)
        v = (w[:, None] * (walkers.x - mean) ** 2).sum(0)
        se_v = torch.sqrt((w[:, None] ** 2 * ((walkers.x - mean) ** 2 - v) ** 2).sum(0))
        assert ((v - std**2).abs() < 4 * se_v).all(), (v, std**2, se_v)


def test_unweighted_walkers_are_biased_on_the_same_schedule():
    """Control: the same run without weights misses the moving target (the test above can fail)."""
    g = torch.Generator().manual_seed(0)
    n, h = 40_000, 0.5
    targets = list(schedule())
    energy = Gaussian(*targets[0])
    walkers = start(energy, energy.sample(n, g))
    move = Move("ula", step_size=h)
    for mean, std in targets[1:]:
        with torch.no_grad():
            energy.mean.copy_(mean)
            energy.log_std.copy_(std.log())
        walkers, _ = advance(walkers, energy, move, g, weighted=False)
    v = walkers.x.var(0)
    se = v * math.sqrt(2 / n)
    assert float(((v - std**2).abs() / se).max()) > 10
