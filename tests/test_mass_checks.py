"""The three-way check of a model's class masses: tempered SMC, class-Gaussian IS and MALA chains agree with a
closed form when all three work, and a disagreement marks the masses unreliable."""

import math

import pytest
import torch

import ebmlab
from ebmlab.metrics.class_gaussians import ClassGaussians
from ebmlab.metrics.mass_checks import MassCheck, agreement, check_class_masses

DIM = 6
MEANS = torch.zeros(3, DIM, dtype=torch.float64)
MEANS[:, 0] = torch.tensor([-4.0, 0.0, 4.0])
MEANS[:, 1] = torch.tensor([0.0, 3.0, 0.0])
MASSES = torch.tensor([0.55, 0.3, 0.15], dtype=torch.float64)
SMALL = MassCheck(smc_particles=600, pilot_particles=300, smc_steps=2, is_draws=6000, chains=400, chain_steps=200,
                  chain_step_size=0.1)  # fmt: skip


def mixture() -> ebmlab.GaussianMixture:
    return ebmlab.GaussianMixture(MEANS, torch.log(MASSES), stds=0.8)


def nearest(points: torch.Tensor) -> torch.Tensor:
    """Class regions: the nearest component mean (well separated: their masses are the mixture weights
    up to a tail mass far below the standard errors here)."""
    return torch.cdist(points.double(), MEANS).argmin(1)


def training_points(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    comp = torch.multinomial(MASSES, 600, replacement=True, generator=g)
    return mixture().sample_components(comp, g), comp


def run_check(seed: int, walkers: torch.Tensor, cfg: MassCheck = SMALL) -> dict:
    base = ebmlab.Gaussian(torch.zeros(DIM, dtype=torch.float64), 4.0, learn_std=False)
    g = torch.Generator().manual_seed(seed)
    return check_class_masses(
        mixture(), base, nearest, (4 / 7, 2 / 7, 1 / 7), training_points(seed), (walkers, None), cfg, g
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_all_three_agree_with_the_closed_form(seed):
    walkers = mixture().sample(500, torch.Generator().manual_seed(100 + seed))
    out = run_check(seed, walkers)
    for name in ("smc", "is", "chains"):
        m, se = torch.tensor(out[name]["masses"]), torch.tensor(out[name]["masses_se"])
        assert bool((se > 0).all())
        assert bool(((m - MASSES).abs() <= 4 * se).all()), (name, m, se)
    exact = float(mixture().log_z().detach())
    for name in ("smc", "is"):
        assert abs(out[name]["log_z"] - exact) <= 4 * out[name]["log_z_se"] + 1e-3, (name, out[name])
    assert out["reliable"] == [True, True, True] and out["tv_reliable"] and out["unreliable_reasons"] == []
    assert out["chains"]["usable"] and out["pairs"] == ["smc-is", "smc-chains", "is-chains"]
    assert out["smc"]["ess_frac"] >= SMALL.min_ess_frac
    assert out["tv"] == pytest.approx(
        0.5 * float((torch.tensor(out["smc"]["masses"]) - torch.tensor([4, 2, 1]) / 7).abs().sum())
    )


def test_chains_that_remember_their_start_are_left_out_and_a_lone_smc_is_unreliable():
    walkers = MEANS[0].expand(500, DIM).clone()  # half the chains start in the first mode and never move
    stuck = MassCheck(**{**vars(SMALL), "chain_steps": 0})
    out = run_check(0, walkers, stuck)
    assert out["chains"]["starts"]["walkers"]["masses"] == pytest.approx([1.0, 0.0, 0.0])
    assert not out["chains"]["usable"] and out["is"]["usable"]
    assert out["pairs"] == ["smc-is"] and out["tv_reliable"]  # the importance sampler still checks the SMC
    alone = run_check(0, walkers, MassCheck(**{**vars(stuck), "min_is_ess": 10**6}))  # IS counted as collapsed
    assert not alone["is"]["usable"] and not alone["tv_reliable"] and alone["pairs"] == []
    assert alone["unreliable_reasons"] == ["no independent estimator is usable (IS collapsed, chains unmixed)"]


def test_agreement_counts_combined_standard_errors():
    a = {"masses": [0.5, 0.5], "masses_se": [0.03, 0.03]}
    b = {"masses": [0.6, 0.4], "masses_se": [0.04, 0.04]}
    ok, z = agreement({"a": a, "b": b}, 3.0)
    assert ok == [True, True] and z[0][0] == pytest.approx(-0.1 / 0.05)
    ok, _ = agreement({"a": a, "b": b}, 1.5)
    assert ok == [False, False]


def test_class_gaussians_density_is_normalised_and_matches_its_draws():
    points, labels = training_points(3)
    base = ebmlab.Gaussian(torch.zeros(DIM, dtype=torch.float64), 4.0, learn_std=False)
    q = ClassGaussians(points, labels, 3, base, defensive=0.2, ridge=0.01)
    g = torch.Generator().manual_seed(0)
    x = q.sample(20000, g)
    # E_q[p0(x)/q(x)] = 1 for the normalised base density p0: checks log_prob against the sampler
    log_p0 = -base(x) - base.log_z()
    ratio = torch.exp(log_p0 - q.log_prob(x))
    assert abs(float(ratio.mean()) - 1) < 4 * float(ratio.std()) / math.sqrt(len(ratio))
    with pytest.raises(ValueError, match="at least 2"):
        ClassGaussians(points[:3], torch.tensor([0, 1, 1]), 3, base, 0.2, 0.01)


@pytest.mark.parametrize(
    "field, value", [("smc_particles", 1), ("cess_target", 1.0), ("chain_steps", -1), ("tolerance", float("nan"))]
)
def test_bad_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        MassCheck(**{field: value})
