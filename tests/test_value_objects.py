"""Settings validated once, at construction (``Resampling``), and one test per bad input of issue 26: each
ends in a one-line ValueError naming what was wrong (or a defined result), never NaN or a traceback."""

import dataclasses
import math
from dataclasses import replace

import pytest
import torch

import ebmlab
from ebmlab.cli import main
from ebmlab.energies import Gaussian
from ebmlab.latent import (
    ChainConfig,
    JarzynskiPriorSampler,
    LatentEBMPrior,
    LatentModel,
    LatentTrainer,
    LEBMSampler,
    LoopConfig,
    MLPGenerator,
    WeightedPriorConfig,
)
from ebmlab.latent.likelihood import LikelihoodConfig, importance_log_marginal
from ebmlab.sampling import smc
from ebmlab.sampling.preconditioner import Preconditioner
from ebmlab.sampling.resampling import Resampling
from ebmlab.sampling.tempering import Temperature, run_schedule
from ebmlab.training import Trainer, negative_phase

D = torch.float64
G = torch.Generator().manual_seed(0)
TARGET = Gaussian(torch.zeros(2, dtype=D), 1.0)


def _walkers(n=8):
    return smc.start(TARGET, torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=D))


# -- Resampling ---------------------------------------------------------------------------------------


def test_resampling_defaults_and_fields():
    r = Resampling()
    assert (r.threshold, r.scheme, r.scope) == (0.5, "systematic", "global")
    assert Resampling(1, "multinomial", "local").threshold == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.threshold = 0.3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(threshold=0.0), r"ess_threshold must lie in \(0, 1\]"),
        (dict(threshold=1.5), r"ess_threshold must lie in \(0, 1\]"),
        (dict(threshold=math.nan), r"ess_threshold must lie in \(0, 1\].*nan"),
        (dict(threshold=True), r"ess_threshold must lie in \(0, 1\]"),
        (dict(threshold="0.5"), r"ess_threshold must lie in \(0, 1\]"),
        (dict(scheme="sorted"), "unknown resampler 'sorted'"),
        (dict(scope="everywhere"), "resample_scope must be one of"),
    ],
)
def test_resampling_is_validated_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Resampling(**kwargs)


# -- the bad inputs of issue 26, item 3 ---------------------------------------------------------------


def test_step_with_nan_ess_threshold_is_refused():
    with pytest.raises(ValueError, match=r"ess_threshold must lie in \(0, 1\]"), pytest.warns(DeprecationWarning):
        smc.step(_walkers(), TARGET, smc.Move(), G, ess_threshold=math.nan)  # the old keyword
    with pytest.raises(ValueError, match=r"ess_threshold must lie in \(0, 1\]"):
        smc.step(_walkers(), TARGET, smc.Move(), G, resampling=Resampling(math.nan))


@pytest.mark.parametrize("beta", [math.nan, -0.5, 0.0, 1.5])
def test_tempering_schedule_refuses_nan_or_negative_temperatures(beta):
    with pytest.raises(ValueError, match=r"beta must lie in \(0, 1\]"):
        Temperature(beta, 0.1)


def test_tempering_schedule_must_increase():
    schedule = [Temperature(0.5, 0.1), Temperature(0.3, 0.1), Temperature(1.0, 0.1)]
    with pytest.raises(ValueError, match="increasing and end at beta = 1"):
        run_schedule(TARGET, TARGET, _walkers(), schedule, smc.Move("mala", 0.1), G)


def test_preconditioner_refuses_a_non_triangular_factor():
    with pytest.raises(ValueError, match="chol must be lower-triangular"):
        Preconditioner(torch.zeros(2, dtype=D), torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=D))


def test_preconditioner_from_moments_refuses_zero_weights():
    x = torch.randn(5, 2, dtype=D)
    with pytest.raises(ValueError, match="positive sum"):
        Preconditioner.from_moments(x, torch.zeros(5, dtype=D))


def test_trainer_refuses_a_negative_energy_reg():
    data = torch.randn(16, 2, dtype=D)
    energy = Gaussian(torch.zeros(2, dtype=D), 1.0)
    opt = torch.optim.SGD(energy.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="energy_reg must be a finite number >= 0"):
        Trainer(energy, data, opt, negative_phase("pcd"), n_walkers=4, generator=G, energy_reg=-1)


def test_weighted_prior_config_refuses_a_fractional_walker_count():
    with pytest.raises(ValueError, match=r"n_walkers must be an integer >= 2, got 2\.5"):
        WeightedPriorConfig(n_walkers=2.5)


def test_likelihood_config_refuses_a_fractional_dof():
    with pytest.raises(ValueError, match=r"dof must be an integer >= 1, got 2\.5"):
        LikelihoodConfig(dof=2.5)


@pytest.mark.parametrize("subset", [torch.tensor([0, 8]), torch.tensor([-1]), torch.tensor([0.5]), torch.tensor([])])
def test_advance_refuses_a_subset_out_of_range(subset):
    with pytest.raises(ValueError, match="subset must"):
        smc.advance(_walkers(), TARGET, smc.Move(), G, subset=subset)


def test_ess_of_all_zero_weights_is_zero_not_nan():
    assert float(ebmlab.ess(torch.full((4,), -math.inf, dtype=D))) == 0.0
    assert float(ebmlab.ess(torch.tensor([0.0, -math.inf], dtype=D))) == 1.0


def _latent_model():
    torch.manual_seed(0)
    return LatentModel(MLPGenerator(2, 3, (8,)), LatentEBMPrior(2, (8,), zero_init_output=True), 0.5)


def test_a_nan_image_is_refused_by_the_log_likelihood():
    model = _latent_model()
    x = torch.randn(3, 3)
    x[1, 0] = math.nan
    with pytest.raises(ValueError, match="1 of the 3 images contain NaN"):
        importance_log_marginal(model, x, torch.zeros(3, 1, 2), LikelihoodConfig(n_samples=4), G)


def _latent_trainer(cfg: WeightedPriorConfig):
    sampler = JarzynskiPriorSampler(LEBMSampler(ChainConfig(prior_steps=2, post_steps=2)), cfg)
    data = torch.randn(16, 3, generator=torch.Generator().manual_seed(5))
    return LatentTrainer(_latent_model(), sampler, data, LoopConfig(batch_size=8), torch.Generator().manual_seed(0))


def test_latent_checkpoint_resumed_under_other_settings_is_refused(tmp_path):
    cfg = WeightedPriorConfig(8, 8, smc.Move("mala", 0.08, n_steps=1))
    trainer = _latent_trainer(cfg)
    trainer.run(1, checkpoint_path=tmp_path / "c.pt", progress=False)
    _latent_trainer(cfg).resume(tmp_path / "c.pt")  # same settings: fine
    with pytest.raises(
        ValueError, match=r"other settings: sampler\.weighted_prior\.move\.n_steps \(checkpoint 1, now 2\)"
    ):
        _latent_trainer(replace(cfg, move=replace(cfg.move, n_steps=2))).resume(tmp_path / "c.pt")


def _cli_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("what", ["missing", "unrelated"])
def test_latent_compare_with_a_missing_or_unrelated_directory(tmp_path, capsys, what):
    other = tmp_path / "other"
    if what == "unrelated":
        other.mkdir()
        (other / "notes.txt").write_text("not a run")
    argv = ["latent", "--task", "toy-prior", "--sampler", "lebm", "--out", str(tmp_path / "out")]
    err = _cli_error(capsys, [*argv, "--compare-with", str(other), "--no-progress"])
    assert "--compare-with" in err and ("not a directory" if what == "missing" else "no toy-prior results") in err


def test_compile_without_a_compiler_is_one_line(tmp_path, capsys, monkeypatch):
    from ebmlab.sampling import compiled

    monkeypatch.setattr(compiled, "compile_available", lambda: False)
    err = _cli_error(capsys, ["gmm", "--preset", "tiny", "--compile", "--out", str(tmp_path), "--no-progress"])
    assert "--compile needs torch.compile" in err


def test_an_impossible_walker_count_is_one_line(tmp_path, capsys):
    argv = ["gmm", "--preset", "tiny", "--methods", "jarzynski", "--log-z-walkers", "1000000000000000"]
    err = _cli_error(capsys, [*argv, "--out", str(tmp_path), "--no-progress"])
    assert "out of memory" in err and "--log-z-walkers" in err


def test_latent_checkpoint_may_change_the_run_length_settings(tmp_path):
    """The DAMC EMA rate scales with the run length, which --resume may extend: not a settings mismatch."""
    from ebmlab.latent import DAMCConfig, DAMCSampler, LatentDiffusion, MLPEncoder

    def trainer(rho):
        torch.manual_seed(0)
        model = LatentModel(MLPGenerator(2, 3, (8,)), LatentEBMPrior(2, (8,)), 0.5)
        q = LatentDiffusion(2, MLPEncoder(3, 16, (16,)), 16, nf=1, t_dim=16, n_steps=3)
        sampler = DAMCSampler(q, ChainConfig(prior_steps=2, post_steps=2), DAMCConfig(q_updates=1, ema_rho=rho))
        data = torch.randn(16, 3, generator=torch.Generator().manual_seed(5))
        return LatentTrainer(model, sampler, data, LoopConfig(batch_size=8), torch.Generator().manual_seed(0))

    trainer(0.5).run(1, checkpoint_path=tmp_path / "c.pt", progress=False)
    trainer(0.25).resume(tmp_path / "c.pt")
    with pytest.raises(ValueError, match=r"loop\.batch_size"):
        t = trainer(0.5)
        t.config = LoopConfig(batch_size=4)
        t.resume(tmp_path / "c.pt")
