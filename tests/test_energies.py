"""Energies with closed-form log Z, the gauge option and the MLP confinement."""

import math

import pytest
import torch

from ebmlab.energies import ConvEnergy, Gaussian, GaussianMixture, MLPEnergy

D = torch.float64


def test_gmm_study_log_z_closed_form():
    e1 = torch.zeros(50, dtype=D)
    e1[0] = 1
    gmm = GaussianMixture(torch.stack([-10 * e1, 6 * e1]), torch.tensor([0.0, math.log(3)], dtype=D))
    assert float(gmm.log_z().detach()) == pytest.approx(25 * math.log(2 * math.pi) + math.log(4), abs=1e-12)
    assert float(gmm.log_z().detach()) == pytest.approx(47.33, abs=5e-3)
    torch.testing.assert_close(gmm.log_masses().exp(), torch.tensor([0.25, 0.75], dtype=D))


def test_mixture_log_z_by_quadrature_and_sampling():
    """1-D mixture with unequal widths: log Z against numerical integration; sample moments."""
    gmm = GaussianMixture(
        torch.tensor([[-2.0], [3.0]], dtype=D),
        torch.tensor([0.3, -0.4], dtype=D),
        stds=torch.tensor([0.5, 1.5], dtype=D),
    )
    grid = torch.linspace(-15, 20, 200_001, dtype=D)
    with torch.no_grad():
        z = torch.trapezoid(torch.exp(-gmm(grid[:, None])), grid)
    assert float(gmm.log_z().detach()) == pytest.approx(math.log(float(z)), abs=1e-9)
    g = torch.Generator().manual_seed(0)
    x = gmm.sample(100_000, g)
    with torch.no_grad():
        p = torch.exp(-gmm(grid[:, None]) - gmm.log_z())
        mean = float(torch.trapezoid(p * grid, grid))
        sd = math.sqrt(float(torch.trapezoid(p * (grid - mean) ** 2, grid)))
    assert abs(float(x.mean()) - mean) < 4 * sd / math.sqrt(x.shape[0])


def test_gaussian_log_z_and_grad_of_log_z():
    g = Gaussian(torch.zeros(3, dtype=D), torch.tensor([0.5, 1.0, 2.0], dtype=D))
    assert g.log_z().item() == pytest.approx(1.5 * math.log(2 * math.pi) + math.log(0.5 * 1 * 2), abs=1e-12)
    g.log_z().backward()
    torch.testing.assert_close(g.log_std.grad, torch.ones(3, dtype=D))


def test_frozen_log_weight_stays_fixed_under_any_optimiser():
    gmm = GaussianMixture(
        torch.randn(2, 3, generator=torch.Generator().manual_seed(1), dtype=D),
        torch.tensor([0.7, 0.0], dtype=D),
        frozen=[0],
    )
    opt = torch.optim.AdamW(gmm.parameters(), lr=0.1, weight_decay=0.5)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(2), dtype=D)
    for _ in range(5):
        opt.zero_grad()
        gmm(x).mean().backward()
        opt.step()
    assert float(gmm.log_weights[0].detach()) == 0.7
    assert float(gmm.log_weights[1].detach()) != 0.0


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"means must have shape \(K, d\)"):
        GaussianMixture(torch.zeros(3))
    with pytest.raises(ValueError, match="frozen index 5"):
        GaussianMixture(torch.zeros(2, 3), frozen=[5])
    with pytest.raises(ValueError, match="confinement_std"):
        MLPEnergy(3, confinement_std=-1.0)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        ConvEnergy()(torch.zeros(2, 784))


def test_confined_mlp_starts_as_a_known_gaussian():
    mlp = MLPEnergy(4, hidden=(16, 16), confinement_std=2.0).double()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3), dtype=D)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), (x * x).sum(1) / 8)
    assert mlp.initial_log_z() == pytest.approx(2 * math.log(2 * math.pi * 4), abs=1e-12)
    assert mlp.sample_initial(5, torch.Generator().manual_seed(0)).shape == (5, 4)
    with pytest.raises(ValueError, match="confinement"):
        MLPEnergy(4).initial_log_z()
