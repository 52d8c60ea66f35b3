"""The training loop: resume equals uninterrupted, divergence handling, input validation, and
Jarzynski vs PCD vs CD on a small two-mode problem."""

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.experiments.gmm import GmmConfig, build_trainer, left_index
from ebmlab.sampling.kernels import Move
from ebmlab.training import DivergenceError, NegativePhase, Trainer, negative_phase

D = torch.float64
SMALL = GmmConfig(dim=5, n_data=300, n_walkers=300, iters=40, checkpoint_every=10)


def test_resume_equals_uninterrupted_bit_for_bit(tmp_path):
    straight, _, _ = build_trainer(SMALL, "jarzynski", seed=3)
    straight.run(40, progress=False)

    first, _, _ = build_trainer(SMALL, "jarzynski", seed=3)
    first.run(17, checkpoint_path=tmp_path / "c.pt", checkpoint_every=100, progress=False)
    resumed, _, _ = build_trainer(SMALL, "jarzynski", seed=3)
    resumed.resume(tmp_path / "c.pt")
    resumed.run(40, progress=False)

    for a, b in zip(straight.energy.state_dict().values(), resumed.energy.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(straight.walkers.x, resumed.walkers.x)
    assert torch.equal(straight.walkers.log_w, resumed.walkers.log_w)
    assert torch.equal(straight.walkers.log_z_ref, resumed.walkers.log_z_ref)
    assert straight.history == resumed.history
    assert any(r["resampled"] for r in straight.history) or straight.history[-1]["ess_frac"] < 1


class Quadratic(torch.nn.Module):
    """U = a |x|^2 / 2 with an unconstrained a: a too-large learning rate drives a < 0 and the walkers
    off to infinity."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(1.0, dtype=D))

    def forward(self, x):
        return 0.5 * self.a * (x * x).sum(1)


def test_divergence_is_caught_and_last_good_checkpoint_kept(tmp_path):
    def make():
        g = torch.Generator().manual_seed(0)
        energy = Quadratic()
        data = 10 * torch.randn(100, 2, generator=g, dtype=D)
        return Trainer(
            energy, data, torch.optim.SGD(energy.parameters(), lr=1.0), negative_phase("pcd"), n_walkers=20, generator=g
        )

    trainer, ckpt = make(), tmp_path / "c.pt"
    with pytest.raises(DivergenceError, match=r"diverged at iteration \d+: walker energies") as info:
        trainer.run(100, checkpoint_path=ckpt, checkpoint_every=1, progress=False)
    assert info.value.step >= 1
    good = make()
    good.resume(ckpt)
    assert good.step_count == info.value.step
    assert torch.isfinite(good.walkers.state.energy).all()


def _gaussian_setup(**phase_kw):
    data = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=D)
    energy = Gaussian(torch.zeros(3, dtype=D))
    opt = torch.optim.SGD(energy.parameters(), lr=0.01)
    return energy, data, opt, phase_kw


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda e, d, o: Trainer(
                e, torch.randn(50, 4, dtype=D), o, negative_phase("pcd"), n_walkers=8, generator=torch.Generator()
            ),
            "dimension 4 but the energy expects 3",
        ),
        (
            lambda e, d, o: Trainer(
                e,
                torch.full((5, 3), float("nan"), dtype=D),
                o,
                negative_phase("pcd"),
                n_walkers=8,
                generator=torch.Generator(),
            ),
            "NaN or infinite values in 5 sample",
        ),
        (
            lambda e, d, o: Trainer(e, d, o, negative_phase("pcd"), n_walkers=1, generator=torch.Generator()),
            "n_walkers must be an integer >= 2",
        ),
        (lambda e, d, o: negative_phase("jarzynski", move=Move(step_size=0.0)), "step_size must be a positive"),
        (lambda e, d, o: negative_phase("jarzynski", move=Move(step_size=-1.0)), "step_size must be a positive"),
        (lambda e, d, o: negative_phase("jarzynski", ess_threshold=1.5), r"ess_threshold must lie in \(0, 1\]"),
        (lambda e, d, o: negative_phase("jarzynski", ess_threshold=0.0), r"ess_threshold must lie in \(0, 1\]"),
        (lambda e, d, o: negative_phase("sgld"), "unknown method 'sgld'"),
        (lambda e, d, o: negative_phase("jarzynski", resampler="fancy"), "unknown resampler 'fancy'"),
        (lambda e, d, o: NegativePhase(init="noise"), "init must be one of"),
        (
            lambda e, d, o: (
                Trainer(
                    e, d, o, negative_phase("jarzynski"), n_walkers=8, generator=torch.Generator(), init_sampler=None
                )
                if not hasattr(e, "sample")
                else Trainer(
                    torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0)).double(),
                    d,
                    o,
                    negative_phase("jarzynski"),
                    n_walkers=8,
                    generator=torch.Generator(),
                )
            ),
            "need exact draws from the initial model",
        ),
    ],
)
def test_bad_input_is_a_clear_value_error(make, match):
    energy, data, opt, _ = _gaussian_setup()
    with pytest.raises(ValueError, match=match):
        make(energy, data, opt)


def test_log_z_tracks_exact_value_while_learning_a_gaussian():
    """Jarzynski walkers follow a Gaussian student as it learns mean and scale; log Z_hat stays on the
    exact log Z (the walker-parameter coupling makes this asymptotic in N, so the tolerance is loose)."""
    g = torch.Generator().manual_seed(0)
    data = torch.tensor([2.0, -1.0], dtype=D) + torch.tensor([0.5, 1.5], dtype=D) * torch.randn(
        4000, 2, generator=g, dtype=D
    )
    energy = Gaussian(torch.zeros(2, dtype=D))
    opt = torch.optim.SGD(energy.parameters(), lr=0.05)
    trainer = Trainer(
        energy, data, opt, negative_phase("jarzynski", move=Move(step_size=0.05)), n_walkers=4000, generator=g
    )
    trainer.run(300, progress=False)
    s = trainer.summary()
    assert abs(float(energy.mean.detach()[0]) - 2.0) < 0.1
    assert abs(s["log_z_est"] - s["log_z_exact"]) < 0.05, s
    # the history records the exact and estimated quantities at every step
    assert {"log_z_est", "log_z_exact", "ce_est", "ce_exact", "ess_frac", "resampled"} <= set(trainer.history[0])


def test_mode_weights_jarzynski_right_pcd_and_cd_wrong():
    """A reduced version of the d = 50 study (d = 10, N = n = 500, 2000 iterations): the weighted method
    finds the minority mass 0.25, PCD collapses it, CD stays near its initial 0.5."""
    cfg = GmmConfig(dim=10, n_data=500, n_walkers=500, iters=2000)
    masses = {}
    for method in ("jarzynski", "pcd", "cd"):
        trainer, model, _ = build_trainer(cfg, method, seed=0)
        trainer.run(cfg.iters, progress=False)
        masses[method] = float(model.log_masses().detach().exp()[left_index(model)])
    assert abs(masses["jarzynski"] - 0.25) < 0.04, masses
    assert abs(masses["pcd"] - 0.25) > 0.12, masses
    assert abs(masses["cd"] - 0.25) > 0.12, masses
