"""Contract tests: every registry entry goes through the same checks.

Estimators (``ebmlab.estimators.ESTIMATORS``): result fields, shapes and batching, NaN/inf rejection,
seeded reproducibility, and bias and standard error on a closed form.  The problem is a d = 2
Gaussian target with known log Z and a Gaussian proposal neither much wider nor much narrower than it
(every estimator, IS and reciprocal IS included, then has finite variance).
"""

import math

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.estimators import ESTIMATORS, Estimate, GaussianNoise, Problem, get_estimator
from ebmlab.sampling import smc
from ebmlab.sampling.langevin import KernelInfo, LangevinState, init_state
from ebmlab.sampling.resampling import Resampling
from ebmlab.sampling.walkers import log_z_estimate, log_z_se, normalized_weights

D = torch.float64
TARGET = Gaussian(torch.tensor([1.0, -0.5], dtype=D), torch.tensor([0.7, 1.3], dtype=D), learn_std=False)
LOG_Z = math.log(2 * math.pi) + math.log(0.7) + math.log(1.3)
PROPOSAL = GaussianNoise(torch.tensor([1.2, -0.3]), torch.tensor([0.8, 1.2]))
# options an entry needs (everything else at its defaults)
OPTIONS = {
    "bridge-power": {"power": 0.3},
    "ais": {"move": smc.Move("mala", 0.3), "betas": 8},
    "ais-reverse": {"move": smc.Move("mala", 0.3), "betas": 8},
}
NAMES = sorted(ESTIMATORS)


def log_phi(x):
    return -TARGET(x)


def problem(batch=(), n1=300, n2=300, seed=0, fn=log_phi):
    """Draws for ``batch`` independent problems, from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    reps = math.prod(batch)
    x = TARGET.sample(reps * n1, g).reshape(*batch, n1, 2)
    y = PROPOSAL.sample(reps * n2, g).reshape(*batch, n2, 2)
    return Problem(fn, [PROPOSAL], x, y, generator=g)


def run(name, p):
    return ESTIMATORS[name](p, **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_result_fields(name):
    est = run(name, problem())
    assert isinstance(est, Estimate) and est.method == name
    for field in ("log_z", "se", "ess"):
        value = getattr(est, field)
        assert value.shape == () and value.dtype == D and bool(torch.isfinite(value)), field
    assert float(est.se) > 0 and 1 <= float(est.ess) <= 600 + 1e-9  # at most all draws of both samples
    assert est.converged.shape == () and est.converged.dtype == torch.bool and est.all_converged
    assert isinstance(est.iterations, int) and est.iterations >= 0
    assert isinstance(est.diagnostics, dict)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_one_by_one(name):
    """A (2, 3) batch gives the six problems' estimates, one by one (the stochastic entries consume
    one generator item by item)."""
    x, y = problem(batch=(6,), seed=1).x, problem(batch=(6,), seed=1).y
    batched = run(
        name,
        Problem(
            log_phi,
            [PROPOSAL],
            x.reshape(2, 3, 300, 2),
            y.reshape(2, 3, 300, 2),
            generator=torch.Generator().manual_seed(99),
        ),
    )
    g = torch.Generator().manual_seed(99)
    singles = [run(name, Problem(log_phi, [PROPOSAL], x[b], y[b], generator=g)) for b in range(6)]
    assert batched.log_z.shape == batched.se.shape == batched.ess.shape == batched.converged.shape == (2, 3)
    for field in ("log_z", "se", "ess"):
        one = torch.stack([getattr(s, field) for s in singles]).reshape(2, 3)
        assert torch.allclose(getattr(batched, field), one, rtol=1e-10, atol=1e-12), field


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("name", NAMES)
def test_rejects_nan_and_plus_inf(name, bad):
    def broken(x):
        out = log_phi(x).clone()
        out[..., 3] = bad  # the fourth draw of both samples
        return out

    with pytest.raises(ValueError, match=r"NaN|not finite"):
        run(name, problem(fn=broken))


@pytest.mark.parametrize("name", NAMES)
def test_seeded_reproducibility(name):
    a, b = run(name, problem(seed=5)), run(name, problem(seed=5))
    assert torch.equal(a.log_z, b.log_z) and torch.equal(a.se, b.se)
    c = run(name, problem(seed=6))
    assert not torch.equal(a.log_z, c.log_z)


REPS = 200


@pytest.mark.parametrize("name", NAMES)
def test_unbiased_with_calibrated_standard_error(name):
    """Over REPS seeded replicates: mean error within 4 standard errors of the mean, and the reported
    SE matches the spread of the estimates."""
    est = run(name, problem(batch=(REPS,), seed=7))
    err = est.log_z - LOG_Z
    assert abs(float(err.mean())) < 4 * float(err.std()) / math.sqrt(REPS)
    assert 0.75 < float(err.std() / est.se.mean()) < 1.33


def test_lookup_by_name():
    assert get_estimator("rlr") is ESTIMATORS["rlr"]
    with pytest.raises(ValueError, match="unknown estimator 'mbar'; choose one of"):
        get_estimator("mbar")


# -- kernels (``ebmlab.sampling.smc.KERNELS``), driven by the weighted-walker engine -------------------
# Every kernel returns (state, KernelInfo) with the one signature and moves walkers between two Gaussians:
# weighted means and log Z of the end point come out right within their standard errors, for any event shape,
# reproducibly, and non-finite input is refused.

SAMPLER_NAMES = sorted(smc.KERNELS)


class EventGaussian(torch.nn.Module):
    """N(mean, std^2) over events of any shape: U(x) = |x - mean|^2 / (2 std^2) summed over the event."""

    def __init__(self, mean: float, std: float):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x):
        return 0.5 * ((x - self.mean) / self.std).square().flatten(1).sum(1)

    def log_z(self, event_size: int) -> float:
        return event_size * (0.5 * math.log(2 * math.pi) + math.log(self.std))


def _anneal(name, event=(3,), n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    start_e, target = EventGaussian(0.0, 1.0), EventGaussian(0.8, 1.2)
    size = math.prod(event)
    walkers = smc.start(start_e, torch.randn(n, *event, generator=g, dtype=D), start_e.log_z(size))
    path = [lambda x, b=b: (1 - b) * start_e(x) + b * target(x) for b in torch.linspace(0, 1, 21)[1:].tolist()]
    walkers, infos = smc.anneal(
        walkers, path, smc.Move(name, 0.2, n_steps=2), g, resampling=Resampling(0.5, "multinomial")
    )
    return walkers, infos, target.log_z(size)


@pytest.mark.parametrize("event", [(3,), (1, 2, 2)])
@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_sampler_fields_and_event_shapes(name, event):
    walkers, infos, _ = _anneal(name, event, n=64)
    assert walkers.x.shape == (64, *event) and walkers.state.grad.shape == (64, *event)
    assert walkers.state.energy.shape == (64,) and walkers.log_w.shape == (64,) and walkers.log_w.dtype == D
    assert len(infos) == 20 and all(isinstance(i, smc.MoveInfo) for i in infos)
    rates = [i.accept_rate for i in infos]
    if smc.KERNELS[name].invariant:
        assert all(0 < float(r) <= 1 for r in rates)
    else:
        assert all(r is None for r in rates)


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_kernel_returns_state_and_kernel_info(name, weighted):
    """One step of every kernel, called through the registry with the common signature, gives a
    (LangevinState, KernelInfo) of the right shapes: an increment exactly for a weighted non-invariant
    step, accept decisions and log ratios exactly for an invariant (Metropolis) kernel."""
    kernel, g = smc.KERNELS[name], torch.Generator().manual_seed(0)
    state = init_state(TARGET, torch.randn(16, 2, generator=g, dtype=D))
    new, info = kernel.step(state, TARGET, 0.2, g, None, None, weighted, False)
    assert isinstance(new, LangevinState) and isinstance(info, KernelInfo)
    assert new.x.shape == (16, 2) and new.energy.shape == (16,) and new.grad.shape == (16, 2)
    if weighted and not kernel.invariant:
        assert info.increment.shape == (16,) and info.increment.dtype == D
    else:
        assert info.increment is None
    if kernel.invariant:
        assert info.accepted.shape == (16,) and info.accepted.dtype == torch.bool
        assert info.log_ratio.shape == (16,) and info.log_ratio.dtype == D
    else:
        assert info.accepted is None and info.log_ratio is None


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_sampler_seeded_reproducibility(name):
    a, _, _ = _anneal(name, n=128, seed=5)
    b, _, _ = _anneal(name, n=128, seed=5)
    c, _, _ = _anneal(name, n=128, seed=6)
    assert torch.equal(a.x, b.x) and torch.equal(a.log_w, b.log_w) and not torch.equal(a.x, c.x)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_sampler_is_unbiased_within_its_standard_error(name):
    walkers, _, exact = _anneal(name)
    se = float(log_z_se(walkers))
    assert 0 < se < 0.2 and abs(float(log_z_estimate(walkers)) - exact) < 3 * se
    w = normalized_weights(walkers.log_w)
    mean = (w[:, None] * walkers.x).sum(0)
    se_mean = ((w[:, None] ** 2 * (walkers.x - mean) ** 2).sum(0)).sqrt()
    assert bool(((mean - 0.8).abs() < 4 * se_mean).all()), (mean, se_mean)


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_sampler_rejects_non_finite_input(name):
    with pytest.raises(ValueError, match="NaN or infinite"):
        smc.start(EventGaussian(0.0, 1.0), torch.full((4, 3), math.nan, dtype=D))
    with pytest.raises(ValueError, match="NaN or infinite at 4 starting point"):
        smc.start(lambda x: x.sum(1) * math.inf, torch.zeros(4, 3, dtype=D))
    with pytest.raises(ValueError, match="unknown kernel"):
        smc.Move(name + "-nope")
