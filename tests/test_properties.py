"""Property tests (hypothesis) for the parts every other part trusts: the resamplers, the walker
bookkeeping and the estimators' input checks.  Derandomized, so every run checks the same examples."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ebmlab.estimators import EstimatorWarning, bridge, importance_sampling, mis, nce_log_z, reciprocal_is, rlr
from ebmlab.sampling import RESAMPLERS, LangevinState, ess, log_z_estimate, make_walkers, normalized_weights
from ebmlab.sampling.walkers import add_log_weights, log_z_se, resample

FAST = settings(max_examples=40, deadline=None, derandomize=True)
SCHEMES = sorted(RESAMPLERS)

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
log_weights = st.lists(st.floats(min_value=-30, max_value=30), min_size=1, max_size=20)
# some particles may carry no weight at all (log-weight -inf), but not all of them
log_weights_with_zeros = st.lists(
    st.one_of(st.floats(min_value=-30, max_value=30), st.just(-math.inf)), min_size=1, max_size=20
).filter(lambda a: any(math.isfinite(v) for v in a))


def _weights(log_w: list[float]) -> torch.Tensor:
    return torch.softmax(torch.tensor(log_w, dtype=torch.float64), 0)


def _walkers(log_w: list[float], log_z_ref: float = 0.0):
    n = len(log_w)
    x = torch.arange(n, dtype=torch.float64).unsqueeze(1)  # walker i sits at x = i, so copies are traceable
    walkers = make_walkers(LangevinState(x, torch.zeros(n, dtype=torch.float64), torch.zeros_like(x)), log_z_ref)
    return add_log_weights(walkers, torch.tensor(log_w, dtype=torch.float64))


# ---------------------------------------------------------------- resamplers


@FAST
@given(log_w=log_weights_with_zeros, m=st.integers(1, 50), seed=st.integers(0, 2**31), scheme=st.sampled_from(SCHEMES))
def test_resampler_draws_m_indices_in_range_with_weight(log_w, m, seed, scheme) -> None:
    w = _weights(log_w)
    idx = RESAMPLERS[scheme](w, m, torch.Generator().manual_seed(seed))
    assert idx.shape == (m,) and idx.dtype == torch.int64
    assert bool((idx >= 0).all()) and bool((idx < len(w)).all())
    assert bool((w[idx] > 0).all()), "a particle with zero weight was drawn"
    counts = torch.bincount(idx, minlength=len(w))
    assert int(counts.sum()) == m


@FAST
@given(log_w=log_weights, m=st.integers(1, 50), seed=st.integers(0, 2**31), scheme=st.sampled_from(SCHEMES))
def test_low_variance_resamplers_keep_counts_near_m_w(log_w, m, seed, scheme) -> None:
    """Systematic: floor or ceil of M w_i copies; residual: at least floor(M w_i); stratified: within one
    of those; multinomial has no such bound."""
    w = _weights(log_w)
    counts = torch.bincount(RESAMPLERS[scheme](w, m, torch.Generator().manual_seed(seed)), minlength=len(w))
    mw = m * w
    eps = 1e-9 * m  # the cumulative sums round
    lo, hi = torch.floor(mw - eps), torch.ceil(mw + eps)
    if scheme == "systematic":
        assert bool((counts >= lo).all()) and bool((counts <= hi).all())
    elif scheme == "stratified":
        assert bool((counts >= lo - 1).all()) and bool((counts <= hi + 1).all())
    elif scheme == "residual":
        assert bool((counts >= lo).all())


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    log_w=st.lists(st.floats(min_value=-4, max_value=4), min_size=2, max_size=8),
    m=st.integers(1, 12),
    scheme=st.sampled_from(SCHEMES),
)
def test_resampler_expected_counts_are_m_w(log_w, m, scheme) -> None:
    """Unbiased: E[count_i] = M w_i; the mean over R replicates is within 5 multinomial standard errors
    (an upper bound on the variance of the low-variance schemes), plus float round-off."""
    w = _weights(log_w)
    gen = torch.Generator().manual_seed(1234)
    reps = 1000
    total = torch.zeros(len(w), dtype=torch.float64)
    for _ in range(reps):
        total += torch.bincount(RESAMPLERS[scheme](w, m, gen), minlength=len(w)).double()
    mean = total / reps
    se = torch.sqrt(m * w * (1 - w) / reps)
    assert bool((torch.abs(mean - m * w) <= 5 * se + 1e-9).all()), f"{scheme}: mean counts {mean} vs M w {m * w}"


# ---------------------------------------------------------------- walker bookkeeping


@FAST
@given(log_w=st.lists(st.floats(min_value=-1e3, max_value=1e3), min_size=2, max_size=30))
def test_ess_lies_in_one_to_n(log_w) -> None:
    value = float(ess(torch.tensor(log_w, dtype=torch.float64)))
    assert 1 - 1e-9 <= value <= len(log_w) * (1 + 1e-9)


@FAST
@given(log_w=st.lists(st.floats(min_value=-50, max_value=50), min_size=2, max_size=30), shift=finite, ref=finite)
def test_weights_and_log_z_are_invariant_to_a_constant_shift(log_w, shift, ref) -> None:
    """Adding c to every log-weight and -c to the reference leaves log Z_hat, its SE, the normalised
    weights and the ESS unchanged: only weight ratios carry information."""
    base = _walkers(log_w, ref)
    moved = _walkers([a + shift for a in log_w], ref - shift)
    tol = 1e-9 * (1 + abs(shift) + abs(ref))
    assert float(log_z_estimate(moved)) == pytest.approx(float(log_z_estimate(base)), abs=tol)
    assert float(log_z_se(moved)) == pytest.approx(float(log_z_se(base)), abs=1e-9)
    torch.testing.assert_close(normalized_weights(moved.log_w), normalized_weights(base.log_w), atol=1e-12, rtol=1e-9)
    assert float(ess(moved.log_w)) == pytest.approx(float(ess(base.log_w)), rel=1e-9)


@FAST
@given(
    log_w=st.lists(st.floats(min_value=-50, max_value=50), min_size=2, max_size=30),
    ref=finite,
    seed=st.integers(0, 2**31),
    scheme=st.sampled_from(SCHEMES),
)
def test_resampling_preserves_the_log_z_estimate(log_w, ref, seed, scheme) -> None:
    walkers = _walkers(log_w, ref)
    after = resample(walkers, scheme, torch.Generator().manual_seed(seed))
    assert float(log_z_estimate(after)) == pytest.approx(float(log_z_estimate(walkers)), abs=1e-9 * (1 + abs(ref)))
    assert bool((after.log_w == 0).all()) and after.n == walkers.n and after.n_resamplings == 1
    assert bool((walkers.log_w[after.x[:, 0].long()] > -math.inf).all())  # every copy has an ancestor with weight


# ---------------------------------------------------------------- estimators' input checks


def _finite_or_value_error(call) -> None:
    """A finite log Z and a standard error that is not NaN, or a ValueError saying what was wrong."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimatorWarning)  # a warned estimate must still be finite
        try:
            est = call()
        except ValueError as err:
            assert str(err) and "\n" not in str(err).strip()
            return
    assert bool(torch.isfinite(est.log_z).all()), f"{est.method}: log Z {est.log_z}"
    assert not bool(torch.isnan(est.se).any()), f"{est.method}: standard error {est.se}"


def _vec(n: int):
    return st.lists(finite, min_size=n, max_size=n).map(lambda v: torch.tensor(v, dtype=torch.float64))


two_sample = st.integers(1, 12).flatmap(
    lambda n1: st.integers(1, 12).flatmap(lambda n2: st.tuples(_vec(n1), _vec(n1), _vec(n2), _vec(n2)))
)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=two_sample)
def test_two_sample_estimators_give_finite_estimates_or_a_value_error(data) -> None:
    lp_x, lq_x, lp_y, lq_y = data
    _finite_or_value_error(lambda: importance_sampling(lp_y, lq_y))
    _finite_or_value_error(lambda: reciprocal_is(lp_x, lq_x))
    for alpha in ("optimal", "geometric", "power"):
        _finite_or_value_error(lambda alpha=alpha: bridge(lp_x, lq_x, lp_y, lq_y, alpha=alpha, power=0.3))
    _finite_or_value_error(lambda: bridge(lp_x, lq_x, lp_y, lq_y, solver="fixed-point", max_iter=200))
    _finite_or_value_error(lambda: nce_log_z(lp_x, lq_x, lp_y, lq_y))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(counts=st.lists(st.integers(0, 5), min_size=1, max_size=3).filter(lambda c: sum(c) > 0), data=st.data())
def test_mis_and_rlr_give_finite_estimates_or_a_value_error(counts, data) -> None:
    n, k = sum(counts), len(counts)
    log_phi = data.draw(_vec(n))
    log_q = data.draw(_vec(k * n)).reshape(k, n)
    for weights in ("deterministic-mixture", "standard"):
        _finite_or_value_error(lambda weights=weights: mis(log_phi, log_q, counts, weights=weights))
    _finite_or_value_error(lambda: rlr(log_q, counts))
    _finite_or_value_error(lambda: rlr(torch.cat([log_q, log_phi[None]]), [*counts, 0], {0: 0.0}))
