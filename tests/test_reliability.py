"""Reliability of the study commands (`ebmlab gmm` here): output-directory rules, settings recorded and
checked on --resume, damaged files named in one line, finite blow-ups caught, and a run killed with
SIGKILL at a random point resuming to the identical result."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebmlab.cli import main

TINY = ["gmm", "--preset", "tiny", "--methods", "jarzynski", "--seeds", "0", "--no-progress"]


def cli(tmp, *args):
    """Run the CLI in a subprocess: (exit status, stderr)."""
    done = subprocess.run([sys.executable, "-m", "ebmlab", *args], capture_output=True, text=True, cwd=tmp, timeout=600)
    return done.returncode, done.stderr


def without_timing(metrics: dict) -> dict:
    runs = metrics["runs"]
    for by_seed in runs.values():
        for run in by_seed.values():
            run.pop("wall_time_s", None)
    return runs


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    assert main([*TINY, "--out", str(out)]) == 0
    return out


def test_a_non_empty_out_is_refused_without_resume_or_overwrite(finished, tmp_path, capsys):
    before = (finished / "runs" / "jarzynski_seed0.json").read_text()
    assert main([*TINY, "--out", str(finished), "--iters", "5"]) == 2
    err = capsys.readouterr().err
    assert "already holds files" in err and "--resume" in err and "--overwrite" in err
    assert (finished / "runs" / "jarzynski_seed0.json").read_text() == before  # nothing lost
    (tmp_path / "keep.txt").write_text("mine")
    assert main([*TINY, "--out", str(tmp_path), "--overwrite", "--iters", "5"]) == 0
    assert (tmp_path / "keep.txt").read_text() == "mine"  # --overwrite removes only the study's own files


@pytest.mark.parametrize(
    "args, field",
    [
        (["--step-size", "0.05"], "step_size"),
        (["--walkers", "100"], "n_walkers"),
        (["--data", "100"], "n_data"),
        (["--kernel", "mala"], "kernel"),
        (["--iters", "30"], "iters"),  # fewer iterations than recorded
    ],
)
def test_resume_refuses_other_settings_naming_them(finished, capsys, args, field):
    assert main([*TINY, "--out", str(finished), "--resume", *args]) == 2
    err = capsys.readouterr().err
    assert f"other settings than the recorded ones: {field} (recorded" in err


def test_resume_with_more_iterations_continues_the_runs(tmp_path, capsys):
    assert main([*TINY, "--out", str(tmp_path), "--iters", "20"]) == 0
    assert main([*TINY, "--out", str(tmp_path), "--iters", "40", "--resume"]) == 0
    assert "iters extended from 20 to 40" in capsys.readouterr().out
    resumed = json.loads((tmp_path / "metrics.json").read_text())
    assert main([*TINY, "--out", str(tmp_path / "straight"), "--iters", "40"]) == 0
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert without_timing(resumed) == without_timing(straight)


def _damage(out: Path, kind: str) -> Path:
    files = {
        "checkpoint": out / "checkpoints" / "jarzynski_seed0.pt",
        "run file": out / "runs" / "jarzynski_seed0.json",
        "study settings file": out / "study.json",
    }
    return files[kind]


@pytest.mark.parametrize("kind", ["checkpoint", "run file", "study settings file"])
@pytest.mark.parametrize("damage", ["truncated", "empty", "random bytes"])
def test_damaged_files_are_named_in_one_line(tmp_path, kind, damage):
    out = tmp_path / "out"
    assert main([*TINY, "--out", str(out), "--iters", "20"]) == 0
    if kind == "checkpoint":  # a finished run is reused without its checkpoint: make it unfinished
        (out / "runs" / "jarzynski_seed0.json").unlink()
    path = _damage(out, kind)
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "empty": b"", "random bytes": os.urandom(300)}[damage])
    status, err = cli(tmp_path, *TINY, "--out", str(out), "--iters", "20", "--resume")
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert path.name in err and "weights_only" not in err


def test_incomplete_run_file_is_named(tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*TINY, "--out", str(out), "--iters", "5"]) == 0
    (out / "runs" / "jarzynski_seed0.json").write_text('{"status": "ok"}')
    assert main([*TINY, "--out", str(out), "--iters", "5", "--resume"]) == 2
    assert "not a complete run file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["--out", "{tmp}/file.txt"], 2, "is a file, not a directory"),
        (["--out", "{tmp}/file.txt/sub"], 2, "cannot write into --out"),
        (["--seeds", "99999999999999999999999"], 2, "seeds must lie in"),
        (["--seeds", "-1"], 2, "seeds must lie in"),
        (["--log-z-walkers", "1"], 2, "--log-z-walkers must be 0 (off) or >= 2"),
        (["--cess-target", "0"], 2, "cess_target must lie in (0, 1]"),
        (["--kernel", "hmc"], 2, "invalid choice: 'hmc'"),
        (["--resume", "--overwrite"], 2, "not allowed with argument"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(tmp_path, args, status, message):
    (tmp_path / "file.txt").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, err = cli(tmp_path, *TINY, *([] if "--out" in args else ["--out", str(tmp_path / "o")]), *args)
    assert code == status and message in err and "Traceback" not in err, err


def test_finite_blow_up_is_reported_as_divergence(tmp_path, capsys):
    """CD with an absurd step: the walkers reach ~1e100 without a NaN; the run is reported diverged."""
    code = main(
        ["gmm", "--preset", "tiny", "--methods", "cd", "--seeds", "0", "--step-size", "1e6"]
        + ["--out", str(tmp_path), "--no-progress"]
    )
    assert code == 1
    run = json.loads((tmp_path / "runs" / "cd_seed0.json").read_text())
    assert run["status"] == "diverged" and "beyond the divergence bound" in run["error"]


def test_killed_at_random_points_resumes_to_the_identical_result(tmp_path):
    """SIGKILL once a checkpoint exists (the kill lands at a random iteration), then --resume."""
    args = [*TINY, "--iters", "60"]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    straight = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    rng = random.Random(0)
    for attempt in range(2):
        out = tmp_path / f"killed{attempt}"
        proc = subprocess.Popen([sys.executable, "-m", "ebmlab", *args, "--out", str(out)], cwd=tmp_path)
        ckpt = out / "checkpoints" / "jarzynski_seed0.pt"
        deadline = time.monotonic() + 300
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert main([*args, "--out", str(out), "--resume"]) == 0
        assert not list(out.rglob("*.tmp"))  # a write killed midway leaves nothing behind
        resumed = json.loads((out / "metrics.json").read_text())
        assert without_timing(resumed) == without_timing(straight)
