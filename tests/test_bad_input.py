"""Bad input to the sampling and training API: every case is a clear error of the right type whose
message says what was wrong (never NaN, a wrong answer, or an obscure failure further down)."""

import math
import warnings

import pytest
import torch

from ebmlab.energies import Gaussian, MLPEnergy
from ebmlab.sampling import smc
from ebmlab.sampling.kernels import Move
from ebmlab.sampling.resampling import RESAMPLERS, Resampling, get_resampler
from ebmlab.sampling.walkers import Walkers, maybe_resample
from ebmlab.training import NegativePhase, Trainer, negative_phase

D = torch.float64
G = torch.Generator().manual_seed(0)
W = torch.full((4,), 0.25, dtype=D)

BAD_WEIGHTS = [
    (torch.full((4,), math.nan, dtype=D), 4, "finite and non-negative"),
    (torch.tensor([0.5, -0.1, 0.3, 0.3], dtype=D), 4, "finite and non-negative"),
    (torch.tensor([1.0, math.inf, 0, 0], dtype=D), 4, "finite and non-negative"),
    (torch.full((4,), 2.5, dtype=D), 4, "must sum to one"),
    (torch.zeros(4, dtype=D), 4, "must sum to one"),  # e.g. exp of all -inf log-weights
    (W.reshape(2, 2), 4, "1-D floating-point"),
    (torch.ones(4, dtype=torch.long), 4, "1-D floating-point"),
    (W, 0, "integer >= 1"),
    (W, 2.5, "integer >= 1"),
]


@pytest.mark.parametrize("scheme", sorted(RESAMPLERS))
@pytest.mark.parametrize("weights, m, message", BAD_WEIGHTS)
def test_resamplers_reject_bad_weights(scheme, weights, m, message):
    with pytest.raises(ValueError, match=message):
        RESAMPLERS[scheme](weights, m, G)


@pytest.mark.parametrize("scheme", sorted(RESAMPLERS))
def test_resamplers_return_m_indices_for_good_weights(scheme):
    idx = get_resampler(scheme)(torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=D), 4, torch.Generator().manual_seed(1))
    assert idx.shape == (4,) and idx.dtype == torch.long and bool(((idx >= 0) & (idx < 4)).all())


def _walkers(log_w):
    energy = Gaussian(torch.zeros(2, dtype=D))
    w = smc.start(energy, torch.randn(len(log_w), 2, generator=G, dtype=D))
    return Walkers(w.state, torch.as_tensor(log_w, dtype=D), w.log_z_ref)


@pytest.mark.parametrize("log_w", [[-math.inf] * 4, [math.nan, 0.0, 0.0, 0.0]])
def test_maybe_resample_refuses_walkers_without_weight(log_w):
    with pytest.raises(ValueError, match="no walker has a usable weight"):
        maybe_resample(_walkers(log_w), 0.5, "systematic", G)


def _setup():
    energy = MLPEnergy(3, hidden=(8,), confinement_std=1.0).double()
    data = torch.randn(40, 3, generator=torch.Generator().manual_seed(2), dtype=D)
    return energy, data, torch.optim.SGD(energy.parameters(), lr=0.01)


def _trainer(phase=None, **kw):
    energy, data, opt = _setup()
    kw.setdefault("n_walkers", 16)
    kw.setdefault("init_sampler", lambda n, g: energy.sample_initial(n, g, D))
    kw.setdefault("log_z0", energy.initial_log_z())
    return Trainer(energy, kw.pop("data", data), opt, phase or negative_phase("jarzynski"), generator=G, **kw)


TRAINER_CASES = [
    (dict(n_walkers=2.5), ValueError, "n_walkers must be an integer >= 2, got 2.5"),
    (dict(n_walkers=True), ValueError, "n_walkers must be an integer >= 2"),
    (dict(n_walkers=1), ValueError, "n_walkers must be an integer >= 2"),
    (dict(log_z_walkers=1), ValueError, "log_z_walkers must be 0 .off. or at least 2"),
    (dict(log_z_walkers=-3), ValueError, "log_z_walkers must be an integer >= 0"),
    (dict(log_z_walkers=2.0), ValueError, "log_z_walkers must be an integer"),
    (dict(data_batch=0), ValueError, "data_batch must be an integer >= 1"),
    (dict(data_batch=41), ValueError, r"data_batch must be in \[1, 40\]"),
    (dict(divergence_bound=-1.0), ValueError, "divergence_bound must be a positive"),
    (dict(init_sampler=lambda n, g: torch.zeros(n + 1, 3, dtype=D)), ValueError, r"shape \(16, 3\), got \(17, 3\)"),
    (dict(init_sampler=lambda n, g: torch.zeros(n, 4, dtype=D)), ValueError, r"must return a tensor of shape"),
    (dict(init_sampler=lambda n, g: torch.full((n, 3), math.nan, dtype=D)), ValueError, "NaN or infinite values"),
    (dict(init_sampler=lambda n, g: [0.0] * n), ValueError, "must return a tensor"),
    (dict(data=torch.full((40, 3), math.nan, dtype=D)), ValueError, "NaN or infinite values in 40 sample"),
    (dict(data=torch.ones(40, 3, dtype=torch.long)), ValueError, "floating-point"),
    (dict(data=torch.ones(40, 5, dtype=D)), ValueError, "dimension 5 but the energy expects 3"),
    (dict(log_z0=math.nan), ValueError, "log_z0 must be a finite number"),
    (dict(log_z0=math.inf), ValueError, "log_z0 must be a finite number"),
    (dict(log_z0=-math.inf), ValueError, "log_z0 must be a finite number"),
    (dict(log_z0="0"), ValueError, "log_z0 must be a finite number"),
]


@pytest.mark.parametrize("kwargs, exc, message", TRAINER_CASES)
def test_trainer_rejects_bad_arguments(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        _trainer(**kwargs)


def test_trainer_needs_a_phase_and_an_initial_sampler():
    energy, data, opt = _setup()
    with pytest.raises(TypeError, match="phase must be a NegativePhase"):
        Trainer(energy, data, opt, "jarzynski", n_walkers=8, generator=G)
    plain = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0)).double()
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="need exact draws from the initial model"):
        Trainer(plain, data, opt, negative_phase("jarzynski"), n_walkers=8, generator=G)
    with pytest.raises(ValueError, match="need exact draws from the initial model"):
        Trainer(plain, data, opt, negative_phase("pcd"), n_walkers=8, generator=G, log_z_walkers=8)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: t.run(-1), "n_iters must be an integer >= 0"),
        (lambda t: t.run(2.5), "n_iters must be an integer >= 0"),
        (lambda t: t.run(3, checkpoint_path="c.pt", checkpoint_every=0), "checkpoint_every must be an integer >= 1"),
        (lambda t: (t.run(3), t.run(2)), "below the 3 iterations already done"),
    ],
)
def test_run_rejects_bad_counts(call, message):
    with pytest.raises(ValueError, match=message):
        call(_trainer())


PHASE_CASES = [
    (dict(ess_threshold=True), "ess_threshold must lie in"),
    (dict(ess_threshold=1.5), "ess_threshold must lie in"),
    (dict(ess_threshold=0.0), "ess_threshold must lie in"),
    (dict(cess_target=2.0), "cess_target must lie in"),
    (dict(walker_batch=1), "walker_batch must be an integer >= 2"),
    (dict(reset_every=0), "reset_every must be an integer >= 1"),
    (dict(resampler="bogus"), "unknown resampler 'bogus'"),
    (dict(resample_scope="everywhere"), "resample_scope must be one of"),
    (dict(init="noise"), "init must be one of"),
]


@pytest.mark.parametrize("overrides, message", PHASE_CASES)
def test_negative_phase_rejects_bad_settings(overrides, message):
    with pytest.raises(ValueError, match=message):
        NegativePhase(**overrides)


MOVE_CASES = [
    (dict(n_steps=0), "n_steps must be an integer >= 1"),
    (dict(n_steps=1.5), "n_steps must be an integer >= 1"),
    (dict(step_size=0.0), "step_size must be a positive"),
    (dict(step_size=math.inf), "step_size must be a positive"),
    (dict(noise_std=-1.0), "noise_std must be a positive"),
    (dict(kernel="hmc"), "unknown kernel 'hmc'"),
]


@pytest.mark.parametrize("fields, message", MOVE_CASES)
def test_move_rejects_bad_settings(fields, message):
    with pytest.raises(ValueError, match=message):
        Move(**fields)


def test_phase_takes_a_move():
    with pytest.raises(TypeError, match="move must be a Move"):
        NegativePhase(move="ula")
    with pytest.warns(DeprecationWarning, match=r"negative_phase\(step_size=, steps_per_update=\) is deprecated"):
        old = negative_phase("jarzynski", step_size=0.05, steps_per_update=3)
    assert old == negative_phase("jarzynski", move=Move(step_size=0.05, n_steps=3))
    with pytest.raises(TypeError, match="not both"):
        negative_phase("jarzynski", move=Move(), step_size=0.05)
    with pytest.raises(TypeError, match="unexpected keyword"):
        negative_phase("jarzynski", stepsize=0.05)


def test_unknown_method_and_unweighted_ess_control():
    with pytest.raises(ValueError, match="unknown method 'sgld'"):
        negative_phase("sgld")
    with pytest.raises(ValueError, match="cess_target controls the weights"):
        negative_phase("pcd", cess_target=0.9)


@pytest.mark.parametrize(
    "energy, message",
    [
        (lambda x: x.sum(), "one value per sample"),
        (lambda x: x, "one value per sample"),
    ],
)
def test_engine_rejects_energies_of_the_wrong_shape(energy, message):
    with pytest.raises(ValueError, match=message):
        smc.start(energy, torch.zeros(4, 2, dtype=D))


def test_anneal_rejects_a_bad_threshold():
    w = _walkers([0.0] * 4)
    with pytest.raises(ValueError, match="ess_threshold must lie in"):
        smc.anneal(w, [lambda x: x.square().sum(1)], smc.Move(), G, resampling=Resampling(2.0))
    with pytest.raises(ValueError, match="ess_threshold must lie in"), pytest.warns(DeprecationWarning):
        smc.anneal(w, [lambda x: x.square().sum(1)], smc.Move(), G, ess_threshold=2.0)  # the old keyword


def test_step_and_anneal_take_a_resampling_and_keep_the_old_keywords():
    """step(ess_threshold=, resampler=) is step(resampling=Resampling(...)), with a warning; None: never."""
    energy = lambda x: x.square().sum(1)
    start = _walkers([0.0, -3.0, 0.0, -3.0])
    runs = []
    for how in (dict(resampling=Resampling(0.9, "multinomial")), dict(ess_threshold=0.9, resampler="multinomial")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            w, info = smc.step(start, energy, smc.Move(), torch.Generator().manual_seed(0), **how)
        runs.append(w)
        assert info.resampled and len(caught) == (1 if "ess_threshold" in how else 0)
    assert torch.equal(runs[0].x, runs[1].x) and torch.equal(runs[0].log_w, runs[1].log_w)
    with pytest.warns(DeprecationWarning):
        _, info = smc.step(start, energy, smc.Move(), G, ess_threshold=None)
    assert not info.resampled
    with pytest.raises(TypeError, match="not both"):
        smc.step(start, energy, smc.Move(), G, resampling=None, ess_threshold=0.5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        smc.anneal(start, [energy], smc.Move(), G, threshold=0.5)
