"""The imbalanced-digit study on pixels: the tempered energy, its presets, and the CLI end to end."""

import json
import math
from dataclasses import replace

import pytest
import torch

from ebmlab.cli import main as cli_main
from ebmlab.data.mnist import MnistDataError
from ebmlab.energies import BoxedTemperedEnergy, ConvEnergy, box_log_z
from ebmlab.experiments.mnist import run_study
from ebmlab.experiments.mnist.config import PRESETS as ALL_PRESETS
from ebmlab.experiments.mnist.pixels import build_trainer, make_energy
from ebmlab.sampling.langevin import energy_and_grad, init_state, ula

PRESETS = ALL_PRESETS["pixels"]

D = torch.float64


def test_tempered_energy_drift_and_noise_are_consistent():
    """The phase moves with drift h * grad U and noise sigma, and its kernel density uses that sigma."""
    cfg = replace(PRESETS["quick"], step_size=0.3, noise_std=0.02)
    data = torch.zeros(64, 1, 28, 28)
    trainer = build_trainer(cfg, "pcd", seed=0, data=data)
    energy, phase = trainer.energy, trainer.phase
    assert energy.temperature == pytest.approx(0.02**2 / (2 * 0.3))
    assert phase.move.noise_std is None and (2 * phase.move.step_size) ** 0.5 == pytest.approx(0.02)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2
    _, grad_v = energy_and_grad(energy, x)
    _, grad_u = energy_and_grad(energy.base_energy, x)
    assert torch.allclose(phase.move.step_size * grad_v, cfg.step_size * grad_u, rtol=1e-4, atol=1e-9)
    with torch.no_grad():  # the soft wall is zero inside the pixel box and quadratic outside
        inside = torch.zeros(1, 1, 28, 28)
        outside = inside.clone()
        outside[0, 0, 0, 0] = 1.5
        assert float(energy.base_energy(outside) - energy.net(outside)) == pytest.approx(0.5 * cfg.wall * 0.25)
        assert float(energy.base_energy(inside) - energy.net(inside)) == 0.0


def _fixed_theta_log_weight_spread(cfg, steps: int = 5) -> float:
    """Std over 64 walkers of the summed MALA-ratio log-weights after ``steps`` ULA steps at theta_0
    (walkers uniform on a box 10% wider than the pixel box, so the wall is active)."""
    energy = make_energy(cfg, seed=0)
    gen = torch.Generator().manual_seed(0)
    state = init_state(energy, torch.rand(64, 1, 28, 28, generator=gen) * 2.2 - 1.1)
    total = torch.zeros(64, dtype=D)
    for _ in range(steps):
        state, info = ula(state, energy, cfg.noise_std**2 / 2, gen)
        total += info.increment
    return float(total.std())


def test_preset_wall_keeps_fixed_theta_weights_flat():
    """The cpu preset's step/wall product (0.05) keeps the discretisation part of the weights within
    0.5 nat over 5 steps (0.34 measured); a 10x stiffer wall spreads them by over 2 nats (3.7)."""
    cpu = PRESETS["cpu"]
    assert cpu.step_size * cpu.wall == pytest.approx(0.05)
    assert PRESETS["paper"].step_size * PRESETS["paper"].wall == pytest.approx(0.05)
    assert _fixed_theta_log_weight_spread(cpu) < 0.5
    assert _fixed_theta_log_weight_spread(replace(cpu, wall=5.0)) > 2.0


@pytest.mark.parametrize("kw", [dict(wall=10.0), dict(step_size=0.0), dict(noise_std=-1.0)])
def test_config_rejects_unusable_step_wall_noise(kw):
    with pytest.raises(ValueError, match="step_size"):
        replace(PRESETS["cpu"], **kw)


def test_box_log_z_is_exact_for_a_flat_energy_and_the_is_estimate_otherwise():
    """V = 0 on [-1, 1]^784: log Z = 784 log 2 with zero standard error; for the CNN energy the
    estimate equals log(2^D mean exp(-V(u))) over the same uniform draws."""
    flat = BoxedTemperedEnergy(ConvEnergy(4), temperature=1.0, wall=1.0)
    torch.nn.init.zeros_(flat.net.net[-1].weight)
    torch.nn.init.zeros_(flat.net.net[-1].bias)
    est = box_log_z(flat, (1, 28, 28), 16, torch.Generator().manual_seed(0))
    assert float(est.log_z) == pytest.approx(784 * math.log(2.0), rel=1e-12) and float(est.se) == 0.0
    energy = make_energy(PRESETS["quick"], seed=0)
    est = box_log_z(energy, (1, 28, 28), 32, torch.Generator().manual_seed(1))
    u = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        direct = 784 * math.log(2.0) + torch.logsumexp(-energy(u).double(), 0) - math.log(32)
    assert float(est.log_z) == pytest.approx(float(direct), abs=1e-9)


def test_cli_quick_end_to_end(mnist_dir, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "mnist"
    args = ["mnist", "--space", "pixels", "--preset", "quick", "--data-dir", str(mnist_dir), "--out", str(out)]
    assert cli_main([*args, "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["space"] == "pixels" and metrics["methods"] == ["jarzynski", "pcd", "cd"]
    assert metrics["seeds"] == [0] and metrics["data"]["ebm_class_counts"] == [480, 240, 120]
    assert metrics["target_fractions"] == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert 0.8 <= metrics["evaluation"]["heldout_accuracy"] <= 1.0
    assert (out / "classifier.pt").is_file()
    cfg = PRESETS["quick"]
    for method in ("jarzynski", "pcd", "cd"):
        run = metrics["runs"][method]["0"]
        assert run["status"] == "ok"
        traj = run["trajectory"]
        assert traj["step"] == list(range(cfg.eval_every - 1, cfg.iters, cfg.eval_every))
        for kind in ("walker", "model"):  # walker fractions and the model's masses from MALA chains
            for f, tv in zip(traj[f"{kind}_masses"], traj[f"{kind}_tv"]):
                assert sum(f) == pytest.approx(1.0)
                assert tv == pytest.approx(0.5 * sum(abs(a - b) for a, b in zip(f, metrics["target_fractions"])))
        assert all(v * cfg.chains == pytest.approx(round(v * cfg.chains)) for v in run["model_masses"])
        assert all(0 < a <= 1 for a in traj["chain_acceptance"])
        assert all(v >= 0 for v in traj["frechet"]) and all(0 < v <= 1 for v in traj["ess_frac"])
        assert run["wall_time_s"] > 0
        assert metrics["summary"][method]["model_tv_mean"] == pytest.approx(run["model_tv"])
    assert "ce_est" in metrics["runs"]["jarzynski"]["0"] and "ce_est" not in metrics["runs"]["pcd"]["0"]
    assert metrics["runs"]["pcd"]["0"]["ess_frac"] == pytest.approx(1.0)
    for name in ("samples.png", "masses.png", "tv.png", "frechet.png", "cross_entropy.png"):
        assert (out / name).stat().st_size > 10_000, name
    # resume reuses the finished runs and reproduces the report
    assert cli_main([*args, "--no-progress", "--resume", "--methods", "pcd"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["runs"]["pcd"] == metrics["runs"]["pcd"]


def test_missing_data_directory_is_a_clear_error(tmp_path):
    with pytest.raises(MnistDataError, match="does not exist"):
        run_study(PRESETS["quick"], ["pcd"], [0], tmp_path / "out", data_dir=str(tmp_path / "none"))
