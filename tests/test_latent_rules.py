"""The settings rules of `ebmlab latent`: the EMA rate scaled to the run, the per-digit anomaly sigma, the
anomaly learning rates, the settings groups' validation, the official-LEBM preset, pooled anomaly data, best-of
AUPRC."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ebmlab.experiments.latent import anomaly as latent_anomaly
from ebmlab.experiments.latent.anomaly import anomaly_data, best_of
from ebmlab.experiments.latent.build import build_mnist
from ebmlab.experiments.latent.config import (
    PRESETS,
    ema_half_life_iters,
    ema_rate,
    energy_reg_of,
    learning_rates,
    preset,
)
from ebmlab.experiments.latent.settings import (
    AmortiserSettings,
    AnomalySettings,
    DataSettings,
    LatentPreset,
    ModelSettings,
    ToyPriorSettings,
    ToySettings,
    TrainingSettings,
)
from ebmlab.latent import amortisation_diagnostic
from ebmlab.latent.trainer import LatentTrainer

CPU = torch.device("cpu")


def small(p: LatentPreset) -> LatentPreset:
    """``p`` with small networks (generator, EBM prior, amortiser), for fast tests."""
    return replace(
        p,
        model=replace(p.model, ngf=2, ebm_hidden=8),
        amortiser=replace(p.amortiser, cond_dim=16, nif=4, nf=1, t_dim=16, diffusion_steps=5),
    )


def test_ema_half_life_is_the_fraction_of_the_run():
    rho = ema_rate(500, 10, 0.1, 0.005)
    assert (1 - rho) ** (50 / 10) == pytest.approx(0.5)  # half-life 50 iterations = 0.1 x 500
    assert ema_half_life_iters(rho, 10) == pytest.approx(50)
    assert (1 - rho) ** (500 / 10) == pytest.approx(2.0**-10)  # initial weights left at the end of the run


def test_ema_rate_is_capped_at_the_reference_for_long_runs():
    assert ema_rate(10**6, 10, 0.1, 0.005) == 0.005
    assert ema_half_life_iters(0.005, 10) == pytest.approx(1382.8, abs=0.1)
    assert ema_rate(13_000, 10, 0.1, 0.005) > 0.005 > ema_rate(14_000, 10, 0.1, 0.004)
    assert ema_rate(500, 10, None, 0.005) == 0.005
    with pytest.raises(ValueError, match="iters and ema_every"):
        ema_rate(0, 10, 0.1, 0.005)


def test_cpu_preset_damc_gets_the_scaled_rate():
    p = small(PRESETS["cpu"])
    _, sampler, _ = build_mnist(p, "damc", 4, 1.0, 2, CPU, anomaly=True)
    assert sampler.config.ema_rho == pytest.approx(1 - 0.5 ** (10 / 50))
    assert sampler.config.ema_rho > 0.1  # not the reference's 0.005 at 500 iterations


def test_anomaly_sigma_per_digit():
    cpu = PRESETS["cpu"]
    assert cpu.anomaly.sigma_of(1) == 0.1
    assert all(cpu.anomaly.sigma_of(d) == 1.0 for d in (0, 4, 5, 7, 9))
    assert PRESETS["lebm-official"].anomaly.sigma_of(1) == 0.3


def test_learning_rates_of_the_paper_anomaly_task():
    paper = small(PRESETS["paper"])
    assert learning_rates(paper, anomaly=True) == (1e-4, 5e-5, 1e-4)
    assert learning_rates(paper, anomaly=False) == (2e-4, 1e-4, 2e-4)
    _, sampler, loop = build_mnist(paper, "damc", 8, 1.0, 5, CPU, anomaly=True)
    assert (loop.lr_g, loop.lr_e, sampler.config.lr) == (1e-4, 5e-5, 1e-4)
    assert learning_rates(PRESETS["cpu"], anomaly=True) == (2e-4, 1e-4, 2e-4)


def test_lebm_official_settings_reach_the_models():
    p = small(PRESETS["lebm-official"])
    model, sampler, loop = build_mnist(p, "lebm", 8, p.anomaly.sigma_of(1), 5, CPU, anomaly=True)
    acts = {type(m) for m in model.prior.modules()}
    assert nn.GELU in acts and nn.LeakyReLU not in acts
    assert model.sigma == 0.3 and loop.energy_reg == 0.0 and math.isinf(loop.clip)
    trainer = LatentTrainer(model, sampler, torch.zeros(4, 1, 28, 28), loop, torch.Generator().manual_seed(0))
    assert trainer.opt_g.param_groups[0]["lr"] == 1e-4 and trainer.opt_e.param_groups[0]["lr"] == 2e-5
    cpu_model, _, cpu_loop = build_mnist(small(PRESETS["cpu"]), "lebm", 8, 1.0, 5, CPU)
    assert nn.LeakyReLU in {type(m) for m in cpu_model.prior.modules()}
    assert (cpu_loop.clip, cpu_loop.energy_reg) == (100.0, 1e-3)


@pytest.mark.parametrize(
    "group,fields,match",
    [
        (AmortiserSettings, dict(ema_half_life=0.0), r"AmortiserSettings\.ema_half_life must lie in \(0, 1\]"),
        (AmortiserSettings, dict(ema_half_life=1.5), "AmortiserSettings.ema_half_life"),
        (AmortiserSettings, dict(ema_rho=0.0), "AmortiserSettings.ema_rho must be a finite number > 0, got 0.0"),
        (AmortiserSettings, dict(nf=1.5), "AmortiserSettings.nf must be an integer >= 1, got 1.5"),
        (ModelSettings, dict(ebm_activation="relu"), "ModelSettings.ebm_activation must be one of"),
        (ModelSettings, dict(sigma=-1.0), "ModelSettings.sigma must be a finite number > 0"),
        (AnomalySettings, dict(sigma_per_digit=((12, 0.1),)), "AnomalySettings.sigma_per_digit"),
        (AnomalySettings, dict(sigma_per_digit=((1, 0.0),)), "AnomalySettings.sigma_per_digit"),
        (AnomalySettings, dict(lrs=(1e-4, 1e-4)), "AnomalySettings.lrs must be three rates"),
        (AnomalySettings, dict(max_test=0), "AnomalySettings.max_test must be an integer >= 1, got 0"),
        (TrainingSettings, dict(clip=0.0), "TrainingSettings.clip must be a finite number > 0"),
        (TrainingSettings, dict(energy_reg=-1e-3), "TrainingSettings.energy_reg"),
        (TrainingSettings, dict(energy_reg=math.nan), "TrainingSettings.energy_reg"),
        (TrainingSettings, dict(iters=0), "TrainingSettings.iters must be an integer >= 1, got 0"),
        (TrainingSettings, dict(lr_g=math.inf), "TrainingSettings.lr_g must be a finite number > 0"),
        (DataSettings, dict(train_per_digit=0), "DataSettings.train_per_digit must be an integer >= 1"),
        (ToySettings, dict(batch=True), "ToySettings.batch must be an integer >= 1, got True"),
        (ToyPriorSettings, dict(lr_e=0), "ToyPriorSettings.lr_e must be a finite number > 0"),
        (LatentPreset, dict(allowed_samplers=("mcmc",)), "LatentPreset.allowed_samplers must be a non-empty"),
        (LatentPreset, dict(posterior="jarzynski"), "LatentPreset.posterior must be one of"),
    ],
)
def test_bad_settings_fields(group, fields, match):
    """Each settings group checks its own fields at construction, with a one-line error naming the field."""
    with pytest.raises(ValueError, match=match) as info:
        group(**fields)
    assert "\n" not in str(info.value)


def test_a_preset_holds_settings_groups_only():
    with pytest.raises(TypeError, match=r"LatentPreset\.training must be a TrainingSettings, got dict"):
        LatentPreset(training={"iters": 4})
    assert DataSettings(train_per_digit=None).train_per_digit is None  # None: every image left


def test_preset_lookup_errors():
    with pytest.raises(ValueError, match="for --sampler lebm only, not damc"):
        preset("lebm-official", ["lebm", "damc"])
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge", ["lebm"])
    with pytest.raises(ValueError, match="--iters must be >= 1"):
        preset("cpu", ["lebm"], 0)
    with pytest.raises(ValueError, match="--posterior chooses the jarzynski sampler's posterior chains"):
        preset("cpu", ["lebm", "damc"], posterior="damc")
    p = preset("cpu", ["damc"], 40)
    assert (p.training.iters, p.toy.iters, p.toy_prior.iters) == (40, 40, 40)
    assert preset("cpu", ["lebm", "jarzynski"], posterior="damc").posterior == "damc"


def test_energy_regulariser_defaults_and_override():
    cpu = PRESETS["cpu"]
    assert [energy_reg_of(cpu, s) for s in ("lebm", "damc", "jarzynski")] == [1e-3, 0.0, 0.0]
    for s in ("lebm", "damc", "jarzynski"):
        p = preset("cpu", [s], energy_reg=5e-3)
        assert energy_reg_of(p, s) == 5e-3
        assert build_mnist(small(p), s, 8, 1.0, 5, CPU)[2].energy_reg == 5e-3
    assert energy_reg_of(preset("cpu", ["lebm"], energy_reg=0.0), "lebm") == 0.0


def test_best_of_evaluations():
    evals = [{"step": 100, "auprc": 0.4}, {"step": 200, "auprc": 0.7}, {"step": 300, "auprc": 0.5}]
    assert best_of(evals, 0.6, 400) == {"auprc_best_test_selected": 0.7, "auprc_best_iteration": 200}
    assert best_of(evals, 0.9, 400) == {"auprc_best_test_selected": 0.9, "auprc_best_iteration": 400}
    assert best_of([], 0.3, 10) == {"auprc_best_test_selected": 0.3, "auprc_best_iteration": 10}


def _fake_mnist(n: int, offset: int):
    return np.full((n, 28, 28), offset, np.uint8), np.arange(n, dtype=np.int64) % 10


def test_anomaly_data_pools_the_training_set_when_present(tmp_path, monkeypatch):
    monkeypatch.setattr(
        latent_anomaly, "load_mnist", lambda d, split: _fake_mnist(*(30, 1) if split == "train" else (20, 2))
    )
    images, labels, note = anomaly_data(str(tmp_path), pool_train=True)
    assert note["source"] == "test" and "not in the data directory" in note["note"] and len(labels) == 20
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(b"")
    images, labels, note = anomaly_data(str(tmp_path), pool_train=True)
    assert note == {"source": "train+test", "n_images": 50} and images.shape == (50, 28, 28)
    assert (images[:30] == 1).all() and (images[30:] == 2).all()
    _, labels, note = anomaly_data(str(tmp_path), pool_train=False)
    assert note == {"source": "test", "n_images": 20}


@pytest.mark.parametrize("sampler_name", ["lebm", "damc"])
def test_amortisation_diagnostic_fields(sampler_name):
    torch.manual_seed(0)
    model, sampler, _ = build_mnist(small(PRESETS["quick"]), sampler_name, 4, 1.0, 2, CPU)
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    d = amortisation_diagnostic(model, sampler, x, torch.Generator().manual_seed(0))
    want = {"mse_chains", "mse_normal_start"} | ({"mse_ema_q"} if sampler_name == "damc" else set())
    assert set(d) == want and all(math.isfinite(v) and v > 0 for v in d.values())
    if sampler_name == "lebm":
        assert d["mse_chains"] == d["mse_normal_start"]
    else:  # the chains start at Q_bar's draws: the LD steps move them, so their error differs from the draws'
        assert d["mse_chains"] != d["mse_ema_q"]
