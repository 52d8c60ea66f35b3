"""--device on the studies and the API on a GPU: clear refusals without one (these run everywhere), and
CUDA runs of the trainer, the compiled step and the studies (skipped without a GPU)."""

import json

import pytest
import torch

from ebmlab.cli import main as cli_main
from ebmlab.energies import MLPEnergy
from ebmlab.experiments.mnist.config import study_device
from ebmlab.sampling.compiled import compile_available
from ebmlab.sampling.kernels import Move
from ebmlab.training import Trainer, negative_phase

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
@pytest.mark.parametrize("study", ["estimators --experiment equivalence", "mnist --space pixels", "gmm --preset tiny"])
def test_device_cuda_without_a_gpu_is_one_line(study, tmp_path, capsys):
    assert cli_main([*study.split(), "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert "no usable CUDA device" in capsys.readouterr().err


def test_projected_mnist_spaces_run_on_the_cpu():
    assert study_device("auto", "lda") == torch.device("cpu")
    with pytest.raises(ValueError, match="runs on the CPU"):
        study_device("cuda", "pca")


def test_estimators_study_on_the_cpu_device(tmp_path):
    assert (
        cli_main(
            [
                "estimators",
                "--experiment",
                "equivalence",
                "--n1",
                "60",
                "--n2",
                "60",
                "--device",
                "cpu",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "metrics.json").read_text())["runs"]["equivalence"]["0"]["status"] == "ok"


def cuda_trainer(noise="replicated", compile=False):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    energy = MLPEnergy(4, hidden=(32,), confinement_std=1.0).to(dev)
    g = torch.Generator(dev).manual_seed(0)
    data = torch.randn(256, 4, generator=g, device=dev)
    phase = negative_phase("jarzynski", move=Move(step_size=0.02, compile=compile))
    opt = torch.optim.Adam(energy.parameters(), lr=1e-3)
    return Trainer(
        energy,
        data,
        opt,
        phase,
        n_walkers=128,
        generator=g,
        init_sampler=energy.sample_initial,
        log_z0=energy.initial_log_z(),
        noise=noise,
    )


@cuda
@pytest.mark.parametrize("noise", ["replicated", "per-rank"])
def test_trainer_on_cuda(noise):
    trainer = cuda_trainer(noise)
    trainer.run(5, progress=False)
    assert trainer.walkers.x.is_cuda and trainer.walkers.log_w.is_cuda
    assert all(abs(r["log_z_est"]) < 1e3 and 0 < r["ess_frac"] <= 1 for r in trainer.history)
    again = cuda_trainer(noise)
    again.run(5, progress=False)
    assert [r["loss"] for r in again.history] == pytest.approx([r["loss"] for r in trainer.history], rel=1e-5)


@cuda
@pytest.mark.skipif(not compile_available(), reason="torch.compile cannot build graphs here")
def test_compiled_trainer_on_cuda_follows_eager():
    eager, comp = cuda_trainer(), cuda_trainer(compile=True)
    eager.run(3, progress=False)
    comp.run(3, progress=False)
    torch.testing.assert_close(comp.walkers.x, eager.walkers.x, rtol=1e-4, atol=1e-5)


@cuda
def test_estimators_study_on_cuda(tmp_path):
    args = ["estimators", "--experiment", "equivalence", "--n1", "60", "--n2", "60", "--device", "cuda"]
    assert cli_main([*args, "--out", str(tmp_path)]) == 0


@cuda
def test_mnist_pixels_quick_on_cuda(mnist_dir, tmp_path):
    args = ["mnist", "--space", "pixels", "--preset", "quick", "--methods", "jarzynski", "--iters", "8"]
    args += ["--data-dir", str(mnist_dir), "--out", str(tmp_path), "--device", "cuda", "--no-progress"]
    assert cli_main(args) == 0
    run = json.loads((tmp_path / "metrics.json").read_text())["runs"]["jarzynski"]["0"]
    assert run["status"] == "ok"


@cuda
def test_gmm_tiny_on_cuda(tmp_path):
    args = ["gmm", "--preset", "tiny", "--methods", "jarzynski", "--out", str(tmp_path), "--device", "cuda"]
    assert cli_main([*args, "--no-progress"]) == 0
    run = json.loads((tmp_path / "metrics.json").read_text())["runs"]["jarzynski"]["0"]
    assert run["status"] == "ok" and run["max_log_z_z_score"] < 4


def test_gmm_compiled_tiny_run_follows_eager(tmp_path):
    """--compile changes rounding only: the compiled run's mode masses and log Z match the eager ones."""
    if not compile_available():
        pytest.skip("torch.compile cannot build graphs here")
    base = ["gmm", "--preset", "tiny", "--methods", "jarzynski", "--iters", "20", "--device", "cpu", "--no-progress"]
    assert cli_main([*base, "--out", str(tmp_path / "eager")]) == 0
    assert cli_main([*base, "--compile", "--out", str(tmp_path / "compiled")]) == 0
    eager, comp = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("eager", "compiled"))
    eager, comp = eager["runs"]["jarzynski"]["0"], comp["runs"]["jarzynski"]["0"]
    assert comp["mode_masses"]["left"] == pytest.approx(eager["mode_masses"]["left"], abs=1e-9)
    assert comp["log_z_est"] == pytest.approx(eager["log_z_est"], abs=1e-8)


def test_paper_presets_take_device_and_compile():
    from ebmlab.cli import build_parser
    from ebmlab.experiments.mnist import config_from_args

    argv = ["mnist", "--space", "pixels", "--preset", "paper", "--device", "cuda", "--compile"]
    args = build_parser(argv).parse_args(argv)
    assert args.device == "cuda" and args.compile
    assert config_from_args(args).n_walkers == 1024
    argv = ["gmm", "--preset", "paper", "--device", "cuda", "--compile"]
    args = build_parser(argv).parse_args(argv)
    assert args.device == "cuda" and args.compile
