"""Class masses of a model: grid quadrature against closed forms, weighted and genealogy standard
errors, MALA chain ends."""

import math

import pytest
import torch
from scipy.stats import norm

from ebmlab.energies import Gaussian, GaussianMixture
from ebmlab.metrics.masses import (
    GridQuadrature,
    QuadratureCheck,
    ais_class_masses,
    grid_points,
    mala_chain_ends,
    total_variation,
    weighted_class_masses,
)
from ebmlab.sampling import smc

D = torch.float64
MEANS = [[-4.0, 0.5], [3.0, 3.0], [2.5, -3.0]]
STDS = [1.0, 0.7, 1.3]
LOG_WEIGHTS = [0.0, math.log(2.0), math.log(0.5)]


def _mixture() -> GaussianMixture:
    return GaussianMixture(
        torch.tensor(MEANS, dtype=D), torch.tensor(LOG_WEIGHTS, dtype=D), torch.tensor(STDS, dtype=D)
    )


def _quadrants(points: torch.Tensor) -> torch.Tensor:
    """Class 0: x < 0; class 1: x >= 0, y >= 0; class 2: x >= 0, y < 0."""
    right = points[:, 0] >= 0
    return torch.where(right, torch.where(points[:, 1] >= 0, 1, 2), 0)


def _exact_masses() -> torch.Tensor:
    """Mass of each quadrant class under the mixture: sum_k pi_k P_k(region), coordinates independent."""
    pi = _mixture().log_masses().exp().tolist()
    out = torch.zeros(3, dtype=D)
    for p, (mx, my), s in zip(pi, MEANS, STDS):
        right, up = norm.cdf(mx / s), norm.cdf(my / s)
        out += p * torch.tensor([1 - right, right * up, right * (1 - up)], dtype=D)
    return out


def test_quadrature_masses_and_log_z_converge_to_the_closed_forms_for_a_2d_mixture():
    """log Z: the midpoint rule of smooth, fast-decaying integrands converges geometrically, so it
    agrees to round-off.  Masses: region boundaries on cell edges leave the O(h^2) Euler-Maclaurin
    boundary error, so the error shrinks 4x per halving of h and the refinement estimate (3/4 of
    the coarse error) bounds it."""
    energy, exact = _mixture(), _exact_masses()
    res = {n: GridQuadrature.build(_quadrants, 15.0, n, 2, 3)(energy) for n in (150, 300, 600)}
    err = {n: float((r.masses - exact).abs().max()) for n, r in res.items()}
    assert err[300] < 1e-3
    assert err[300] / err[600] == pytest.approx(4.0, rel=0.05) and err[150] / err[300] == pytest.approx(4.0, rel=0.05)
    assert all(r.log_z == pytest.approx(float(energy.log_z().detach()), abs=1e-10) for r in res.values())
    assert res[300].edge_mass < 1e-15
    est = QuadratureCheck.build(_quadrants, 15.0, 300, 2, 3)(energy)
    assert est["masses"] == pytest.approx(res[300].masses.tolist(), abs=1e-15)
    assert est["mass_error_refine"] == pytest.approx(0.75 * err[300], rel=0.05)
    assert max(est["mass_error_wide"], est["log_z_error_wide"], est["log_z_error_refine"]) < 1e-10


def test_quadrature_error_estimates_flag_a_cube_that_cuts_the_model_and_a_coarse_grid():
    energy = _mixture()
    narrow = QuadratureCheck.build(_quadrants, 3.0, 60, 2, 3)(energy)  # cuts off most of two components
    actual = float((torch.tensor(narrow["masses"], dtype=D) - _exact_masses()).abs().max())
    assert actual > 0.05 and narrow["edge_mass"] > 0.01
    assert narrow["mass_error_wide"] > 0.5 * actual  # the doubled cube sees most of the error
    # a boundary through cell centres (odd n): O(h) error, seen by refinement
    coarse = QuadratureCheck.build(lambda p: (p[:, 0] >= 0.05).long(), 15.0, 31, 2, 2)(energy)
    assert coarse["mass_error_refine"] > 1e-3


def test_one_dimensional_quadrature_error_is_the_euler_maclaurin_boundary_term():
    """Mass right of 0 of N(1.5, 0.8^2) by the midpoint rule with h = 0.1: exact Phi(1.5/0.8) plus the
    leading boundary term (h^2 / 24) p'(0); log Z to round-off."""
    energy, h = Gaussian(torch.tensor([1.5], dtype=D), 0.8), 0.1
    res = GridQuadrature.build(lambda p: (p[:, 0] >= 0).long(), 10.0, 200, 1, 2)(energy)
    slope = norm.pdf(0.0, 1.5, 0.8) * 1.5 / 0.8**2  # p'(0)
    assert res.masses[1].item() - norm.cdf(1.5 / 0.8) == pytest.approx(h**2 / 24 * slope, rel=0.01)
    assert res.log_z == pytest.approx(float(energy.log_z().detach()), abs=1e-12)


def test_grid_and_labeller_errors():
    assert grid_points(1.0, 4, 2).shape == (16, 2)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        grid_points(1.0, 4, 3)
    with pytest.raises(ValueError, match="one class"):
        GridQuadrature.build(lambda p: torch.full((p.shape[0],), 5), 1.0, 4, 2, 3)
    with pytest.raises(ValueError, match="same length"):
        total_variation([0.5, 0.5], [1.0])
    assert total_variation([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(0.5)


def test_equal_weight_masses_have_binomial_errors_and_duplicates_count_once_per_ancestor():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (500,), generator=g)
    masses, se = weighted_class_masses(labels, None, 3)
    assert torch.allclose(se, (masses * (1 - masses) / 500).sqrt(), rtol=1e-12)
    # four copies of each draw: same masses; same SE when the copies name their ancestor, half without
    copies = labels.repeat_interleave(4)
    eve = torch.arange(500).repeat_interleave(4)
    m4, se_eve = weighted_class_masses(copies, torch.zeros(2000, dtype=D), 3, eve)
    _, se_naive = weighted_class_masses(copies, torch.zeros(2000, dtype=D), 3)
    assert torch.allclose(m4, masses, atol=1e-14) and torch.allclose(se_eve, se, rtol=1e-10)
    assert torch.allclose(se_naive, se / 2, rtol=1e-10)


def test_importance_weighted_masses_are_calibrated():
    """Draws from N(0, 1) weighted to N(1, 1); class = x > 1 has mass 1/2.  Over 200 seeded replicates
    the z-scores (m - 1/2) / SE have mean square 1 (0.93 measured; its standard error is about
    sqrt(2 / 200) = 0.1); the unweighted binomial SE would give 2.5 and fail the 0.3 tolerance."""
    g = torch.Generator().manual_seed(1)
    z2 = []
    for _ in range(200):
        x = torch.randn(2000, generator=g, dtype=D)
        m, se = weighted_class_masses((x > 1).long(), x - 0.5, 2)
        z2.append(((m[1] - 0.5) / se[1]) ** 2)
    assert float(torch.stack(z2).mean()) == pytest.approx(1.0, abs=0.3)


def test_mala_chains_from_the_target_keep_its_class_masses():
    """Chains started exactly at N(1, 1) stay there (MALA is invariant): the fraction right of 0 is
    Phi(1) within 4 binomial SE, and the acceptance rate of h = 0.5 is high but below one."""
    energy = Gaussian(torch.tensor([1.0], dtype=D), 1.0)
    g = torch.Generator().manual_seed(2)
    ends, acc = mala_chain_ends(energy, energy.sample(4000, g), 20, 0.5, g)
    m, se = weighted_class_masses((ends[:, 0] > 0).long(), None, 2)
    assert abs(float(m[1]) - norm.cdf(1.0)) < 4 * float(se[1])
    assert 0.7 < acc < 1.0
    assert math.isnan(mala_chain_ends(energy, ends, 0, 0.5, g)[1])


def test_ais_masses_and_log_z_agree_with_a_two_component_target_within_their_errors():
    """AIS from N(0, 3^2 I) to a 2-D mixture with closed-form masses and log Z: each class mass and
    log Z within 4 standard errors of the truth, and the particles independent (no resampling),
    so the standard errors are the importance-sampling ones."""
    energy = _mixture()
    base = Gaussian(torch.zeros(2, dtype=D), 3.0, learn_std=False)
    out = ais_class_masses(
        energy,
        base,
        _quadrants,
        3,
        particles=2000,
        steps=100,
        move=smc.Move("mala", step_size=0.3, n_steps=2),
        generator=torch.Generator().manual_seed(3),
    )
    exact = _exact_masses()
    for m, se, x in zip(out["masses"], out["masses_se"], exact.tolist()):
        assert 0 < se < 0.05 and abs(m - x) < 4 * se
    assert abs(out["log_z"] - float(energy.log_z().detach())) < 4 * out["log_z_se"]
    assert 0.1 < out["ess_frac"] <= 1 and 0 < out["acceptance"] < 1
