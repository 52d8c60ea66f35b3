"""Exact equivalences between estimators (docs/method.md, section 7: E1-E5, E7) on shared data sets."""

import math
import warnings

import numpy as np
import pytest
import torch

from ebmlab.estimators import GaussianNoise, bridge, importance_sampling, mis, nce_log_z, reciprocal_is, rlr

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SIG = torch.tensor([0.7, 1.3], dtype=torch.float64)
LOG_Z = math.log(2 * math.pi) + float(SIG.log().sum())  # 1.743566...


def log_phi(x):
    return -0.5 * (((x - MU) / SIG) ** 2).sum(-1)


def two_sample(n1=2000, n2=6000, scale=2.0, seed=0):
    """(log_phi_x, log_q_x, log_phi_y, log_q_y) for the reference d = 2 example (docs/estimators.md)."""
    g = torch.Generator().manual_seed(seed)
    q = GaussianNoise(torch.zeros(2), scale)
    x = MU + SIG * torch.randn(n1, 2, generator=g, dtype=torch.float64)
    y = q.sample(n2, g)
    return log_phi(x), q.log_prob(x), log_phi(y), q.log_prob(y)


def test_e1_e2_optimal_bridge_nce_and_two_state_rlr_agree():
    data = two_sample()
    newton = bridge(*data)
    fixed_point = bridge(*data, solver="fixed-point")
    nce = nce_log_z(*data)
    log_q = torch.stack([torch.cat([data[0], data[2]]), torch.cat([data[1], data[3]])])
    rlr_known = rlr(log_q, [2000, 6000], {1: 0.0})
    rlr_ref = rlr(log_q, [2000, 6000])  # both unknown: log Z_target - log Z_noise
    values = [
        float(newton.log_z),
        float(fixed_point.log_z),
        float(nce.log_z),
        float(rlr_known.log_z[0]),
        float(rlr_ref.log_z[0] - rlr_ref.log_z[1]),
    ]
    assert max(values) - min(values) < 1e-10
    assert newton.all_converged and fixed_point.all_converged and nce.all_converged
    assert abs(values[0] - LOG_Z) < 4 * float(newton.se)


def test_e2_matches_pymbar_bar():
    pymbar = pytest.importorskip("pymbar")
    data = two_sample(seed=1)
    u = -np.stack([np.concatenate([data[0], data[2]]), np.concatenate([data[1], data[3]])])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mbar = pymbar.MBAR(u, np.array([2000, 6000]), relative_tolerance=1e-14, verbose=False)
    assert abs(-(mbar.f_k[0] - mbar.f_k[1]) - float(nce_log_z(*data).log_z)) < 1e-9


def test_e3_rlr_equals_self_consistent_mis():
    """K-state RLR = balance-heuristic MIS with unnormalised components at self-consistent Z's."""
    g = torch.Generator().manual_seed(2)
    means = torch.tensor([[0.0, 0.0], [1.5, 0.5], [-1.0, 1.0]], dtype=torch.float64)
    offsets = torch.tensor([0.3, -2.0, 1.0], dtype=torch.float64)
    counts = [300, 500, 200]
    u = torch.cat([means[k] + torch.randn(c, 2, generator=g, dtype=torch.float64) for k, c in enumerate(counts)])
    log_h = offsets[:, None] - 0.5 * ((u[None] - means[:, None]) ** 2).sum(-1)
    est = rlr(log_h, counts)
    # plain self-consistent MIS in NumPy: Z_k = sum_n h_k(u_n) / sum_l N_l h_l(u_n) / Z_l, Z_0 = 1
    h = np.exp(log_h.numpy())
    z = np.ones(3)
    for _ in range(5000):
        z = (h / (np.array(counts)[:, None] * h / z[:, None]).sum(0)).sum(1)
        z = z / z[0]
    assert np.abs(np.log(z) - est.log_z.numpy()).max() < 1e-10


def test_e4_is_is_single_proposal_mis_and_rlr():
    data = two_sample(seed=3)
    lp, lq = data[2], data[3]
    is_ = importance_sampling(lp, lq)
    dm = mis(lp, lq[None], [6000])
    std = mis(lp, lq[None], [6000], weights="standard")
    r = rlr(torch.stack([lp, lq]), [0, 6000], {1: 0.0})
    assert abs(float(is_.log_z - dm.log_z)) < 1e-13 and abs(float(is_.log_z - std.log_z)) < 1e-13
    assert abs(float(is_.log_z - r.log_z[0])) < 1e-12
    assert abs(float(is_.se - dm.se)) < 1e-14


def test_e4_dm_mis_two_proposals_equals_rlr_with_fixed_proposals():
    g = torch.Generator().manual_seed(4)
    q1, q2 = GaussianNoise(torch.tensor([-1.0, 0.0]), 1.5), GaussianNoise(torch.tensor([2.0, 1.0]), 1.0)
    y = torch.cat([q1.sample(400, g), q2.sample(400, g)])
    log_q = torch.stack([q1.log_prob(y), q2.log_prob(y)])
    dm = mis(log_phi(y), log_q, [400, 400])
    r = rlr(torch.cat([log_phi(y)[None], log_q]), [0, 400, 400], {1: 0.0, 2: 0.0})
    assert abs(float(dm.log_z - r.log_z[0])) < 1e-12
    standard = mis(log_phi(y), log_q, [400, 400], weights="standard")
    assert abs(float(standard.log_z - LOG_Z)) < 4 * float(standard.se)
    assert float(dm.se) < float(standard.se)


def test_e5_limits_and_power_family_endpoints():
    data = two_sample(seed=5)
    is_, ris = importance_sampling(data[2], data[3]), reciprocal_is(data[0], data[1])
    assert abs(float(bridge(*data, alpha="power", power=0.0).log_z - is_.log_z)) < 1e-13
    assert abs(float(bridge(*data, alpha="power", power=1.0).log_z - ris.log_z)) < 1e-13
    assert abs(float(bridge(*data, alpha="power", power=0.5).log_z - bridge(*data, alpha="geometric").log_z)) < 1e-15
    assert abs(float(bridge(*data, nu=1e40).log_z - is_.log_z)) < 1e-10
    assert abs(float(bridge(*data, nu=1e-40).log_z - ris.log_z)) < 1e-10


def test_e7_standard_errors_agree():
    data = two_sample(n1=2000, n2=6000, seed=6)
    mw = float(bridge(*data).se)
    gh = float(nce_log_z(*data).se)
    mbar = float(
        rlr(torch.stack([torch.cat([data[0], data[2]]), torch.cat([data[1], data[3]])]), [2000, 6000], {1: 0.0}).se[0]
    )
    assert abs(mw / mbar - 1) < 0.01 and abs(gh / mbar - 1) < 0.02


def test_proposal_equal_to_target_gives_exact_answer():
    g = torch.Generator().manual_seed(7)
    q = GaussianNoise(MU, SIG)
    x, y = q.sample(500, g), q.sample(700, g)
    est = [
        bridge(log_phi(x), q.log_prob(x), log_phi(y), q.log_prob(y)),
        nce_log_z(log_phi(x), q.log_prob(x), log_phi(y), q.log_prob(y)),
    ]
    for e in est:
        assert abs(float(e.log_z) - LOG_Z) < 1e-12 and float(e.se) < 1e-6


def test_nce_against_mixture_noise_equals_rlr_with_all_noises_fixed():
    """Binary NCE vs the pooled noise mixture psi = sum_j (N_j/N) q_j = RLR with every noise Z fixed
    (the fixed states enter RLR only through that mixture)."""
    g = torch.Generator().manual_seed(8)
    q1, q2 = GaussianNoise(torch.tensor([-1.0, 0.0]), 1.5), GaussianNoise(torch.tensor([2.0, 1.0]), 1.0)
    x = MU + SIG * torch.randn(300, 2, generator=g, dtype=torch.float64)
    y = torch.cat([q1.sample(400, g), q2.sample(200, g)])
    pooled = torch.cat([x, y])
    log_q = torch.stack([q1.log_prob(pooled), q2.log_prob(pooled)])
    log_psi = torch.logsumexp(log_q + torch.tensor([400 / 600, 200 / 600], dtype=torch.float64).log()[:, None], 0)
    nce = nce_log_z(log_phi(x), log_psi[:300], log_phi(y), log_psi[300:])
    r = rlr(torch.cat([log_phi(pooled)[None], log_q]), [300, 400, 200], {1: 0.0, 2: 0.0})
    assert abs(float(nce.log_z - r.log_z[0])) < 1e-10
