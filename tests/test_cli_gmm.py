"""`ebmlab gmm` end to end on the tiny preset: metrics.json fields, plots, resume and option errors."""

import json
import subprocess
import sys

import pytest

from ebmlab.cli import main

RUN_FIELDS = {
    "status",
    "mode_masses",
    "mass_error",
    "log_z_exact",
    "kl_exact",
    "n_resamplings",
    "wall_time_s",
    "trajectory",
    "walker_frac_left",
}
WEIGHTED_FIELDS = {"log_z_est", "kl_est", "log_z_abs_error"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gmm")
    assert main(["gmm", "--preset", "tiny", "--seeds", "0,1", "--out", str(out), "--no-progress"]) == 0
    return out


def test_metrics_json_has_every_field(tiny_run):
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert m["methods"] == ["jarzynski", "pcd", "cd"] and m["seeds"] == [0, 1]
    for method in m["methods"]:
        for seed in ("0", "1"):
            run = m["runs"][method][seed]
            assert set(run) >= RUN_FIELDS
            assert (set(run) >= WEIGHTED_FIELDS) == (method == "jarzynski")
            assert run["mass_error"] == pytest.approx(abs(run["mode_masses"]["left"] - 0.25))
            traj = run["trajectory"]
            assert traj["step"][0] == 0 and len(traj["mass_left"]) == len(traj["step"]) == len(traj["kl_exact"])
        assert m["summary"][method]["n_seeds"] == 2


def test_plots_are_written(tiny_run):
    for name in ("mode_mass.png", "kl_logz.png", "ess.png"):
        png = tiny_run / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_resume_reuses_finished_runs(tiny_run):
    before = json.loads((tiny_run / "metrics.json").read_text())
    assert main(["gmm", "--preset", "tiny", "--seeds", "0,1", "--out", str(tiny_run), "--resume", "--no-progress"]) == 0
    after = json.loads((tiny_run / "metrics.json").read_text())
    assert after["runs"] == before["runs"]


def test_one_dimensional_preset(tmp_path):
    assert (
        main(
            ["gmm", "--preset", "tiny", "--dim", "1", "--methods", "jarzynski", "--out", str(tmp_path), "--no-progress"]
        )
        == 0
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["config"]["dim"] == 1 and m["config"]["left_mass"] == 0.8
    assert m["runs"]["jarzynski"]["0"]["means_e1"] == [-12.0, 9.0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ess-threshold", "1.5"], "ess_threshold must lie in (0, 1]"),
        (["--walkers", "1"], "--walkers must be >= 2"),
        (["--step-size", "-0.1"], "step_size must be a positive"),
    ],
)
def test_bad_values_exit_2_with_a_message(tmp_path, capsys, args, message):
    assert main(["gmm", "--preset", "tiny", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_unknown_method_and_resampler_are_rejected(capsys):
    for args in (["--methods", "jarzynski,sgld"], ["--resampler", "fancy"]):
        with pytest.raises(SystemExit) as info:
            main(["gmm", *args])
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "sgld" in err and "fancy" in err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "ebmlab", "gmm", "--help"], capture_output=True, text=True, check=True)
    assert "--ess-threshold" in out.stdout and "--preset" in out.stdout


def test_noise_mode_is_a_recorded_setting(tmp_path):
    """--noise changes the numbers under torchrun, so it is part of the recorded config (and of resume checks)."""
    from ebmlab.cli import build_parser
    from ebmlab.experiments.gmm.cli import config_from_args

    argv = ["gmm", "--preset", "tiny", "--noise", "per-rank"]
    assert config_from_args(build_parser(argv).parse_args(argv)).noise == "per-rank"
    assert config_from_args(build_parser(argv[:3]).parse_args(argv[:3])).noise == "replicated"
    with pytest.raises(SystemExit):
        build_parser(["gmm", "--noise", "shared"]).parse_args(["gmm", "--noise", "shared"])
