"""`ebmlab latent` quick runs end to end (all tasks, both samplers), JSON fields, PNGs, and option errors."""

import json

import pytest

from ebmlab.cli import main

FIELDS = {
    "toy": ("error_sampler", "error_reference", "mmd_sampler_vs_reference", "wall_time_s"),
    "generate": (
        "test_mse",
        "frechet_sampler",
        "frechet_prior_ld",
        "classifier_accuracy",
        "wall_time_s",
        "amortisation",
        "amortisation_final",
    ),
    "anomaly": (
        "auprc",
        "auprc_best_test_selected",
        "auprc_best_iteration",
        "heldout_digit",
        "wall_time_s",
        "amortisation",
    ),
}
PNGS = {
    "toy": ["toy_kde_{s}_seed0.png"],
    "generate": ["samples_{s}_seed0.png", "reconstructions_{s}_seed0.png", "amortisation_{s}_seed0.png"],
    "anomaly": ["anomaly7_scores_{s}_seed0.png", "anomaly7_amortisation_{s}_seed0.png"],
}


@pytest.mark.parametrize("sampler", ["lebm", "damc"])
@pytest.mark.parametrize("task", ["toy", "generate", "anomaly"])
def test_quick_run_end_to_end(task, sampler, tmp_path, mnist_dir):
    out = tmp_path / "out"
    argv = [
        "latent",
        "--task",
        task,
        "--sampler",
        sampler,
        "--preset",
        "quick",
        "--out",
        str(out),
        "--data-dir",
        str(mnist_dir),
    ]
    if task == "anomaly":
        argv += ["--heldout-digit", "7"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == task and metrics["samplers"] == [sampler] and metrics["preset"] == "quick"
    run = metrics["runs"][sampler]["0"]
    assert run["status"] == "ok"
    for key in FIELDS[task]:
        assert key in run and run[key] is not None, key
    if task == "anomaly":
        assert 0.0 <= run["auprc"] <= 1.0 and run["heldout_digit"] == 7
        assert run["sigma"] == 1.0  # digit 7: the reference's sigma 1
        values = [(e["auprc"], e["step"]) for e in run["evals"]] + [(run["auprc"], 4)]
        assert (run["auprc_best_test_selected"], run["auprc_best_iteration"]) == max(values)
    if task != "toy":  # the amortisation diagnostic every diag_every (2) iterations and at the end (4)
        diag = run["amortisation"]
        assert [r["step"] for r in diag] == [2, 4] and diag[-1] == run["amortisation_final"]
        keys = {"mse_chains", "mse_normal_start"} | ({"mse_ema_q"} if sampler == "damc" else set())
        assert all(set(r) == keys | {"step"} for r in diag)
        assert ("amortised_chains_beat_normal_start" in run) == (sampler == "damc")
    if task == "generate":
        assert run["test_mse"] > 0 and 0 <= run["classifier_accuracy"] <= 1
    if task != "toy":
        assert run["latent_dim"] == 4 and run["sampler_config"]["name"] == sampler
    for name in PNGS[task]:
        png = out / name.format(s=sampler)
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_skips_finished_run(tmp_path):
    out = tmp_path / "out"
    argv = ["latent", "--task", "toy", "--sampler", "lebm", "--preset", "quick", "--out", str(out)]
    assert main(argv) == 0
    first = json.loads((out / "metrics.json").read_text())["runs"]["lebm"]["0"]
    assert main(argv + ["--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["runs"]["lebm"]["0"] == first


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--task", "anomaly", "--sampler", "lebm", "--heldout-digit", "12"], "unknown held-out digit 12"),
        (["--task", "anomaly", "--sampler", "damc"], "needs --heldout-digit"),
        (["--task", "toy", "--sampler", "lebm", "--heldout-digit", "3"], "only to --task anomaly"),
    ],
)
def test_bad_options(extra, match, tmp_path, capsys):
    try:
        code = main(["latent", *extra, "--out", str(tmp_path)])
    except ValueError as exc:  # whether the CLI wraps ValueError or not, the message must say what to do
        assert match in str(exc)
        return
    assert code != 0
    assert match in capsys.readouterr().err


def test_unknown_sampler_rejected_by_argparse(tmp_path):
    with pytest.raises(SystemExit):
        main(["latent", "--task", "toy", "--sampler", "mcmc", "--out", str(tmp_path)])


def test_heldout_one_uses_the_reference_sigma(tmp_path, mnist_dir):
    out = tmp_path / "out"
    argv = ["latent", "--task", "anomaly", "--heldout-digit", "1", "--sampler", "lebm", "--preset", "quick"]
    assert main(argv + ["--iters", "2", "--out", str(out), "--data-dir", str(mnist_dir), "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["runs"]["lebm"]["0"]["sigma"] == 0.1 and metrics["device"] == "cpu"
    assert metrics["runs"]["lebm"]["0"]["data"] == {"source": "test", "n_images": 10000}


def test_non_empty_out_needs_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["latent", "--task", "toy", "--sampler", "lebm", "--preset", "quick", "--out", str(out)]
    assert main(argv) == 0
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0


def test_preset_for_another_sampler_refused(tmp_path, capsys):
    argv = ["latent", "--task", "toy", "--sampler", "damc", "--preset", "lebm-official", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "for --sampler lebm only" in capsys.readouterr().err


def test_resume_under_other_settings_is_refused_naming_the_nested_field(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["latent", "--task", "toy", "--sampler", "lebm", "--preset", "quick", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    recorded = json.loads((out / "study.json").read_text())["config"]
    assert recorded["toy"]["iters"] == 4 and recorded["walkers"]["move"]["n_steps"] == 2  # the nested settings
    assert main(argv + ["--resume", "--energy-reg", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training.energy_reg (recorded None, now 0.5)" in err


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if "time" not in k}
    return value


def test_resume_with_more_iterations_continues_the_runs(tmp_path, capsys):
    """A larger --iters (training.iters, toy.iters, toy_prior.iters) continues from the checkpoints and equals
    the uninterrupted run."""
    argv = ["latent", "--task", "toy-prior", "--sampler", "lebm", "--preset", "quick", "--no-progress"]
    assert main([*argv, "--iters", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--iters", "4", "--out", str(tmp_path / "a"), "--resume"]) == 0
    assert "training.iters extended from 2 to 4: the runs continue" in capsys.readouterr().out
    assert main([*argv, "--iters", "4", "--out", str(tmp_path / "b")]) == 0
    resumed, fresh = (json.loads((tmp_path / d / "metrics.json").read_text())["runs"] for d in "ab")
    assert _without_timings(resumed) == _without_timings(fresh)
