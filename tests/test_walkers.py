"""Walker-set operations: ESS, CV^2, log-Z bookkeeping and the resampling schemes."""

import math

import pytest
import torch

from ebmlab.sampling import (
    LangevinState,
    cv2,
    ess,
    ess_fraction,
    get_resampler,
    log_z_estimate,
    make_walkers,
    maybe_resample,
    resample,
)

D = torch.float64
SCHEMES = ["multinomial", "systematic", "stratified", "residual"]


def random_log_w(n=40, seed=0, scale=1.5):
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=D)


def test_ess_formulas():
    a = random_log_w()
    w = torch.exp(a)
    assert torch.isclose(ess(a), w.sum() ** 2 / (w * w).sum(), rtol=1e-12)
    assert torch.isclose(ess_fraction(a), w.mean() ** 2 / (w * w).mean(), rtol=1e-12)
    assert torch.isclose(cv2(a), (w * w).mean() / w.mean() ** 2 - 1, rtol=1e-12)
    assert torch.isclose(cv2(a), a.numel() / ess(a) - 1, rtol=1e-12)
    assert torch.isclose(ess(a + 123.4), ess(a), rtol=1e-12)
    assert float(ess(torch.zeros(17, dtype=D))) == pytest.approx(17, rel=1e-14)


def test_extreme_log_weights_are_stable():
    a = torch.tensor([1e4, 1e4, -1e4, -1e4, 0.0], dtype=D)
    assert float(ess(a)) == pytest.approx(2.0, rel=1e-12)
    walkers = make_walkers(LangevinState(torch.zeros(5, 1), torch.zeros(5), torch.zeros(5, 1)), 1.0)
    walkers = type(walkers)(walkers.state, a, walkers.log_z_ref)
    est = log_z_estimate(walkers)
    assert math.isfinite(float(est))
    assert float(est) == pytest.approx(1.0 + 1e4 + math.log(2 / 5), rel=1e-12)
    for s in SCHEMES:
        idx = get_resampler(s)(torch.softmax(a, 0), 5, torch.Generator().manual_seed(0))
        assert set(idx.tolist()) <= {0, 1}


@pytest.mark.parametrize("scheme", SCHEMES)
def test_resampler_is_unbiased(scheme):
    """Mean offspring count over R repetitions equals N w_i within 5 standard errors."""
    n, reps = 30, 4000
    w = torch.softmax(random_log_w(n, seed=1), 0)
    g = torch.Generator().manual_seed(2)
    counts = torch.stack([torch.bincount(get_resampler(scheme)(w, n, g), minlength=n) for _ in range(reps)]).double()
    assert int(counts.sum(1).unique().numel()) == 1 and int(counts[0].sum()) == n
    mean, se = counts.mean(0), counts.std(0) / math.sqrt(reps)
    z = (mean - n * w) / se.clamp_min(1e-3 / math.sqrt(reps))
    assert float(z.abs().max()) < 5.0, (scheme, z)


def _offspring_variance(scheme, w, reps=2000):
    g = torch.Generator().manual_seed(5)
    n = w.numel()
    counts = torch.stack([torch.bincount(get_resampler(scheme)(w, n, g), minlength=n) for _ in range(reps)]).double()
    return float(counts.var(0).sum())


def test_low_variance_schemes_beat_multinomial():
    w = torch.softmax(random_log_w(50, seed=3), 0)
    v_multi = _offspring_variance("multinomial", w)
    for scheme in ["systematic", "stratified", "residual"]:
        assert _offspring_variance(scheme, w) < 0.7 * v_multi, scheme


def test_unknown_resampler_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown resampler 'bogus'.*systematic"):
        get_resampler("bogus")


def _walkers(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=D)
    w = make_walkers(LangevinState(x, (x * x).sum(1) / 2, x.clone()), log_z_ref=3.0)
    return type(w)(w.state, random_log_w(n, seed, scale=2.0), w.log_z_ref)


def test_resampling_keeps_log_z_and_resets_weights():
    walkers = _walkers()
    before = log_z_estimate(walkers)
    after = resample(walkers, "systematic", torch.Generator().manual_seed(0))
    assert torch.equal(after.log_w, torch.zeros_like(after.log_w))
    assert float(log_z_estimate(after)) == pytest.approx(float(before), abs=1e-12)
    assert after.n == walkers.n
    # cached energy and gradient travel with their positions
    assert torch.equal(after.state.energy, (after.x * after.x).sum(1) / 2)
    assert torch.equal(after.state.grad, after.x)


def test_maybe_resample_uses_threshold():
    walkers = _walkers()
    frac = float(ess_fraction(walkers.log_w))
    g = torch.Generator().manual_seed(0)
    assert maybe_resample(walkers, frac * 0.99, "systematic", g)[1] is False
    assert maybe_resample(walkers, min(1.0, frac * 1.01), "systematic", g)[1] is True


def test_fewer_than_two_walkers_rejected():
    with pytest.raises(ValueError, match="at least 2 walkers"):
        make_walkers(LangevinState(torch.zeros(1, 2), torch.zeros(1), torch.zeros(1, 2)))
