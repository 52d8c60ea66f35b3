"""`ebmlab lvm --preset quick` end to end for each experiment: metrics.json, plots, resume and option errors."""

import json

import pytest

from ebmlab.cli import main


@pytest.mark.parametrize(
    "experiment, key, pngs",
    [
        ("order-selection", "table", ("mae.png", "evidence_error.png", "evidence_ratio.png")),
        ("error-model", "choices", ("evidence_gap.png",)),
        ("logistic", "summary", ("theta_vs_time.png", "lppd.png")),
    ],
)
def test_quick_preset_runs_and_resumes(tmp_path, experiment, key, pngs):
    args = ["lvm", "--experiment", experiment, "--preset", "quick", "--out", str(tmp_path), "--no-progress"]
    if experiment == "logistic":
        args += ["--seeds", "0,1"]
    assert main(args) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["experiment"] == experiment and m[key]
    for png in pngs:
        assert (tmp_path / png).stat().st_size > 0
    before = (tmp_path / "metrics.json").read_text()
    assert main([*args, "--resume"]) == 0  # finished runs are reused: the same numbers
    assert json.loads((tmp_path / "metrics.json").read_text())[key] == json.loads(before)[key]


def test_order_selection_table_fields(tmp_path):
    assert main(["lvm", "--preset", "quick", "--out", str(tmp_path), "--no-progress"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    row = m["table"][0]
    for rule in ("estimator", "coupled", "exact_at_theta_k", "ml2", "bic"):
        assert 0 <= row[f"mae_{rule}"] <= 9
    assert row["paper_jala_em"] == 0.67 and row["paper_ols_bic"] == 0.64
    assert 0 <= m["checks"]["within_3se"] <= 1


def test_resume_with_longer_iters_continues_from_checkpoints(tmp_path):
    args = ["lvm", "--experiment", "error-model", "--preset", "quick", "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--iters", "10"]) == 0
    assert main([*args, "--iters", "20", "--resume"]) == 0
    run = json.loads((tmp_path / "runs" / "gaussian_seed0.json").read_text())
    assert run["config"]["iters"] == 20


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--experiment", "logistic", "--trials", "3"], "--trials applies"),
        (["--methods", "pgd"], "--methods applies to the logistic"),
        (["--iters", "0"], "--iters must be"),
    ],
)
def test_bad_options_are_refused(tmp_path, capsys, extra, message):
    assert main(["lvm", "--preset", "quick", "--out", str(tmp_path), "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err


def test_existing_out_needs_resume_or_overwrite(tmp_path, capsys):
    args = ["lvm", "--preset", "quick", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
