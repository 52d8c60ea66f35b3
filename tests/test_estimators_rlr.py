"""RLR/MBAR solver: pymbar cross-check, stationarity, batching, known states, unsampled states, errors."""

import math
import warnings

import numpy as np
import pytest
import torch

from ebmlab.estimators import EstimatorWarning, mis, rlr


def gaussian_states(seed, k=5, d=2, counts=None, spread=1.5):
    """K unnormalised isotropic Gaussians with random means/scales/offsets; pooled exact draws.

    Returns log_q (K, N), counts, true log Z (K,)."""
    g = torch.Generator().manual_seed(seed)
    means = spread * torch.randn(k, d, generator=g, dtype=torch.float64)
    scales = 0.7 + 0.8 * torch.rand(k, generator=g, dtype=torch.float64)
    offsets = 3 * torch.randn(k, generator=g, dtype=torch.float64)
    counts = counts or (100 + torch.randint(0, 400, (k,), generator=g)).tolist()
    x = torch.cat(
        [means[j] + scales[j] * torch.randn(c, d, generator=g, dtype=torch.float64) for j, c in enumerate(counts)]
    )
    log_q = offsets[:, None] - 0.5 * ((x[None] - means[:, None]) ** 2).sum(-1) / scales[:, None] ** 2
    log_z = offsets + 0.5 * d * math.log(2 * math.pi) + d * scales.log()
    return log_q, counts, log_z


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pymbar_free_energies_and_uncertainties(seed):
    pymbar = pytest.importorskip("pymbar")
    log_q, counts, _ = gaussian_states(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mbar = pymbar.MBAR(-log_q.numpy(), np.array(counts), relative_tolerance=1e-14, verbose=False)
        ref = mbar.compute_free_energy_differences()
    est = rlr(log_q, counts)
    f = -est.log_z.numpy()
    assert np.abs((f - f[0]) - (mbar.f_k - mbar.f_k[0])).max() < 1e-8
    np.testing.assert_allclose(est.se_diff().numpy(), ref["dDelta_f"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(est.overlap.numpy(), mbar.compute_overlap()["matrix"], atol=1e-10)


def test_stationarity_and_sci_fixed_point():
    log_q, counts, _ = gaussian_states(3)
    est = rlr(log_q, counts)
    assert est.all_converged and est.iterations < 20
    n_k = torch.tensor(counts, dtype=torch.float64)
    f = -est.log_z
    log_mix = torch.logsumexp(n_k.log()[:, None] + f[:, None] + log_q, 0)
    w = torch.exp(f[:, None] + log_q - log_mix)
    assert torch.allclose(w.sum(1), torch.ones(5, dtype=torch.float64), atol=1e-11)
    assert torch.allclose((n_k[:, None] * w).sum(0), torch.ones(log_q.shape[1], dtype=torch.float64), atol=1e-12)
    # the self-consistent iteration alone (many steps) reaches the same fixed point
    sci = rlr(log_q, counts, sci_iter=3000, max_iter=0, tol=1e-9)
    assert torch.allclose(sci.log_z, est.log_z, atol=1e-9)


def test_recovers_true_ratios_within_se():
    log_q, counts, log_z = gaussian_states(4, counts=[2000] * 5)
    est = rlr(log_q, counts, {0: float(log_z[0])})
    z = (est.log_z - log_z)[1:] / est.se[1:]
    assert z.abs().max() < 4.0
    assert est.se[0] == 0


def test_batch_equals_loop_and_batched_known_values():
    problems = [gaussian_states(s, k=3, counts=[150, 200, 250]) for s in range(4)]
    log_q = torch.stack([p[0] for p in problems])
    known = torch.stack([p[2][1] for p in problems])
    batched = rlr(log_q, [150, 200, 250], {1: known})
    for b, (lq, counts, lz) in enumerate(problems):
        single = rlr(lq, counts, {1: float(lz[1])})
        assert torch.allclose(batched.log_z[b], single.log_z, atol=1e-11)
        assert torch.allclose(batched.cov[b], single.cov, atol=1e-12)
    assert torch.equal(batched.log_z[:, 1], known)
    assert batched.log_z.shape == (4, 3) and batched.converged.shape == (4,)


def test_known_states_fixed_and_one_known_equals_reference():
    log_q, counts, log_z = gaussian_states(5)
    free = rlr(log_q, counts)
    one = rlr(log_q, counts, {0: 1.25})
    assert torch.allclose(one.log_z - 1.25, free.log_z, atol=1e-11)
    assert torch.allclose(one.cov, free.cov, atol=1e-12)
    two = rlr(log_q, counts, {0: float(log_z[0]), 3: float(log_z[3])})
    assert two.log_z[3] == log_z[3] and two.se[3] == 0 and two.se[0] == 0
    assert not torch.allclose(two.log_z, free.log_z + log_z[0], atol=1e-6)  # a different estimator


def test_unsampled_state_is_dm_mis_with_known_proposals():
    """E4: target with no samples + all proposal normalizers fixed = deterministic-mixture MIS."""
    log_q, counts, log_z = gaussian_states(6, k=4, counts=[0, 300, 200, 400])
    log_q_norm = log_q[1:] - log_z[1:, None]
    est = rlr(torch.cat([log_q[:1], log_q_norm]), counts, {1: 0.0, 2: 0.0, 3: 0.0})
    dm = mis(log_q[0], log_q_norm, counts[1:])
    assert abs(float(est.log_z[0] - dm.log_z)) < 1e-12
    assert est.iterations == 0
    assert abs(float(est.log_z[0] - log_z[0])) < 4 * float(est.se[0])


def test_unsampled_unknown_state_with_estimated_proposals():
    log_q, counts, log_z = gaussian_states(7, k=4, counts=[0, 500, 500, 500])
    est = rlr(log_q, counts)
    rel = est.log_z - est.log_z[1] - (log_z - log_z[1])
    assert abs(float(rel[0])) < 4 * float(est.se_diff()[1, 0])


def test_reports_non_convergence_and_strict_raises():
    log_q, counts, _ = gaussian_states(8)
    with pytest.warns(EstimatorWarning, match="did not converge"):
        est = rlr(log_q, counts, max_iter=0, sci_iter=1)
    assert not est.all_converged and float(est.diagnostics["max_residual"]) > 1e-12
    with pytest.raises(ValueError, match="did not converge"):
        rlr(log_q, counts, max_iter=0, sci_iter=1, strict=True)


def two_gaussians(separation, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.cat(
        [
            torch.randn(n, generator=g, dtype=torch.float64),
            separation + torch.randn(n, generator=g, dtype=torch.float64),
        ]
    )
    return torch.stack([-0.5 * x**2, -0.5 * (x - separation) ** 2]), [n, n]


def test_low_overlap_warns_and_zero_overlap_raises():
    lq, counts = two_gaussians(6.0)
    with pytest.warns(EstimatorWarning, match="low overlap"):
        rlr(lq, counts, min_overlap=0.1)
    with pytest.raises(ValueError, match="do not overlap"):
        rlr(*two_gaussians(100.0))
    structural = lq.clone()
    structural[0, 200:] = -math.inf
    structural[1, :200] = -math.inf
    with pytest.raises(ValueError, match="does not overlap"):
        rlr(structural, counts)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_rejects_nan_and_plus_inf(bad):
    lq, counts = two_gaussians(1.0)
    lq[1, 5] = bad
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        rlr(lq, counts)


def test_minus_inf_is_a_valid_zero_density():
    lq, counts = two_gaussians(1.0)
    lq[1, 3] = -math.inf  # state 1 has zero density at a sample of state 0
    assert rlr(lq, counts).all_converged


def test_shape_and_count_errors():
    lq, _ = two_gaussians(1.0)
    with pytest.raises(ValueError, match="counts sum to"):
        rlr(lq, [200, 100])
    with pytest.raises(ValueError, match="one entry per state"):
        rlr(lq, [200, 100, 100])
    with pytest.raises(ValueError, match="shape"):
        rlr(lq[0], [400])
    with pytest.raises(ValueError, match="non-negative"):
        rlr(lq, [500, -100])


def test_state_errors():
    lq, counts = two_gaussians(1.0)
    with pytest.raises(ValueError, match="all states have known"):
        rlr(lq, counts, {0: 0.0, 1: 0.0})
    with pytest.raises(ValueError, match="no samples: it carries no information"):
        rlr(torch.cat([lq, lq[:1]]), counts + [0], {2: 0.0})
    with pytest.raises(ValueError, match="no state has samples"):
        rlr(lq[:, :0], [0, 0])
    with pytest.raises(ValueError, match="only 2 states"):
        rlr(lq, counts, {5: 0.0})
    dead = torch.cat([lq, torch.full_like(lq[:1], -math.inf)])
    with pytest.raises(ValueError, match="zero density at every sample"):
        rlr(dead, counts + [0])
    own = lq.clone()
    own[0, 0] = -math.inf
    with pytest.raises(ValueError, match="zero density under state 0"):
        rlr(own, counts)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    from ebmlab.estimators import bridge

    log_q, counts, _ = gaussian_states(9)
    cpu, gpu = rlr(log_q, counts), rlr(log_q.cuda(), counts)
    assert gpu.log_z.is_cuda and torch.allclose(gpu.log_z.cpu(), cpu.log_z, atol=1e-10)
    x, y = log_q[:, : counts[0]], log_q[:, counts[0] : counts[0] + counts[1]]
    b_cpu, b_gpu = bridge(x[0], x[1], y[0], y[1]), bridge(x[0].cuda(), x[1].cuda(), y[0].cuda(), y[1].cuda())
    assert abs(float(b_gpu.log_z) - float(b_cpu.log_z)) < 1e-10


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_chunks_and_callable_equal_in_memory(chunk):
    """Chunked passes over a tensor, and a callable evaluated chunk by chunk, give the in-memory result
    (with a known state, an unsampled unknown state, and a batch of two problems)."""
    problems = [gaussian_states(s, k=4, counts=[150, 0, 200, 250]) for s in (10, 11)]
    log_q = torch.stack([p[0] for p in problems])
    counts = [150, 0, 200, 250]
    known = {2: 0.5}
    whole = rlr(log_q, counts, known)
    calls = []

    def source(start, stop):
        calls.append(stop - start)
        return log_q[..., start:stop]

    for est in (rlr(log_q, counts, known, chunk_size=chunk), rlr(source, counts, known, chunk_size=chunk)):
        for name in ("log_z", "se", "cov", "ess", "overlap"):
            assert torch.allclose(getattr(est, name), getattr(whole, name), rtol=1e-9, atol=1e-11), name
        assert torch.equal(est.converged, whole.converged)
    assert max(calls) <= chunk  # never more than one chunk at a time


def test_registry_rlr_in_chunks_equals_in_memory():
    from ebmlab.estimators import ESTIMATORS, GaussianNoise, Problem

    g = torch.Generator().manual_seed(12)
    q = GaussianNoise(torch.zeros(2), 1.5)
    x, y = 0.8 * torch.randn(3, 200, 2, generator=g, dtype=torch.float64), q.sample(3 * 300, g).reshape(3, 300, 2)
    p = Problem(lambda z: -0.5 * (z / 0.8).square().sum(-1), [q], x, y)
    whole, chunked = ESTIMATORS["rlr"](p), ESTIMATORS["rlr"](p, chunk_size=64)
    assert torch.allclose(whole.log_z, chunked.log_z, atol=1e-11) and torch.allclose(whole.se, chunked.se, atol=1e-11)
