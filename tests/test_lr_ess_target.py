"""The ESS-adaptive learning rate (``Trainer(lr_ess_target=c)``), the whitened kernel (``precondition=``) and
the split of the log-weight increment into its parameter-change and kernel parts."""

import pytest
import torch

import ebmlab
from ebmlab.sampling.preconditioner import Preconditioner

SMALL = ebmlab.Move(step_size=0.05)  # the test problems' walker move


def gaussian_trainer(seed: int = 0, lr: float = 0.3, **kwargs) -> ebmlab.Trainer:
    """A 3-D Gaussian model learning data N((2, -1, 0.5), 0.5^2 I) from N(0, I) with a large learning rate."""
    g = torch.Generator().manual_seed(seed)
    data = 0.5 * torch.randn(2000, 3, generator=g, dtype=torch.float64) + torch.tensor([2.0, -1.0, 0.5]).double()
    energy = ebmlab.Gaussian(torch.zeros(3, dtype=torch.float64)).double()
    phase = kwargs.pop("phase", ebmlab.negative_phase("jarzynski", move=SMALL))
    return ebmlab.Trainer(
        energy,
        data,
        torch.optim.Adam(energy.parameters(), lr=lr),
        phase,
        n_walkers=500,
        generator=torch.Generator().manual_seed(seed + 1),
        **kwargs,
    )


@pytest.mark.parametrize("target", [0.9, 0.99])
def test_every_committed_update_keeps_the_conditional_ess_at_the_target(target):
    trainer = gaussian_trainer(lr_ess_target=target)
    trainer.run(60, progress=False)
    cess = torch.tensor([r["cess"] for r in trainer.history])
    fractions = torch.tensor([r["update_fraction"] for r in trainer.history])
    assert bool((cess >= target).all()), cess.min()
    assert bool((fractions < 1).any())  # the rate was lowered at least once: the control is active
    assert 0 < trainer.lr_scale <= 1
    plain = gaussian_trainer()
    plain.run(60, progress=False)
    plain_cess = [r["ess_frac"] for r in plain.history]
    assert min(plain_cess) < min(r["ess_frac"] for r in trainer.history)  # the weights degrade less


def test_scale_grows_back_when_the_updates_are_gentle():
    trainer = gaussian_trainer(lr=1e-3, lr_ess_target=0.5)
    trainer.lr_scale = 0.25
    trainer.run(10, progress=False)
    assert trainer.lr_scale == 1.0
    assert [r["update_fraction"] for r in trainer.history][:2] == [0.25, 0.25 * 2**0.25]


def test_off_is_bit_identical_to_the_plain_trainer():
    a, b = gaussian_trainer(), gaussian_trainer(lr_ess_target=None, split_increments=False)
    a.run(20, progress=False)
    b.run(20, progress=False)
    assert a.history == b.history
    assert all(torch.equal(p, q) for p, q in zip(a.energy.parameters(), b.energy.parameters()))


def test_resume_keeps_the_adaptive_scale(tmp_path):
    full = gaussian_trainer(lr_ess_target=0.95)
    full.run(30, progress=False)
    half = gaussian_trainer(lr_ess_target=0.95)
    half.run(15, progress=False, checkpoint_path=tmp_path / "c.pt")
    again = gaussian_trainer(lr_ess_target=0.95)
    again.resume(tmp_path / "c.pt")
    again.run(30, progress=False)
    assert again.history == full.history and again.lr_scale == full.lr_scale
    other = gaussian_trainer(lr_ess_target=0.5)
    with pytest.raises(ValueError, match="lr_ess_target"):
        other.resume(tmp_path / "c.pt")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr_ess_target=1.0), "lie in"),
        (dict(lr_ess_target=float("nan")), "lie in"),
        (dict(lr_ess_target=0.9, phase=ebmlab.negative_phase("pcd", move=SMALL)), "weighted"),
        (
            dict(
                lr_ess_target=0.9,
                phase=ebmlab.negative_phase("jarzynski", move=SMALL, cess_target=0.9),
            ),
            "one",
        ),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gaussian_trainer(**kwargs)


def test_increment_split_adds_up_and_puts_mala_in_the_parameter_part():
    ula = gaussian_trainer(split_increments=True)
    ula.run(5, progress=False)
    for row in ula.history:
        for key in ("", "est_"):
            assert row[f"{key}inc_var_param"] > 0 and row[f"{key}inc_var_kernel"] > 0
    mala = gaussian_trainer(
        split_increments=True, phase=ebmlab.negative_phase("jarzynski", move=ebmlab.Move(kernel="mala", step_size=0.05))
    )
    mala.run(5, progress=False)
    for row in mala.history:
        assert row["inc_var_kernel"] == pytest.approx(0.0, abs=1e-20)
        assert row["inc_var"] == pytest.approx(row["inc_var_param"], rel=1e-12)


def test_increment_split_at_fixed_parameters_is_all_kernel():
    trainer = gaussian_trainer(lr=0.0, split_increments=True)
    trainer.run(3, progress=False)
    for row in trainer.history:
        assert row["inc_var_param"] == 0.0 and row["inc_var_kernel"] == pytest.approx(row["inc_var"], rel=1e-12)


def test_whitened_kernel_keeps_the_weights_exact_at_fixed_parameters():
    """At fixed parameters the weighted mean of e^A stays 1 and the weighted mean is the model's, whatever map."""
    pre = Preconditioner(torch.tensor([0.5, 0.0, -0.5]).double(), torch.diag(torch.tensor([2.0, 1.0, 0.5])).double())
    trainer = gaussian_trainer(lr=0.0, precondition=pre, log_z_walkers=4000)
    trainer.run(20, progress=False)
    est = trainer.estimator
    w = torch.softmax(est.log_w, 0)
    mean = w @ est.x
    assert float(mean.abs().max()) < 0.15
    s = trainer.summary()
    assert abs(s["log_z_est"] - s["log_z_exact"]) < 4 * s["log_z_se"] + 1e-3
    with pytest.raises(TypeError, match="Preconditioner"):
        gaussian_trainer(precondition=torch.eye(3))
