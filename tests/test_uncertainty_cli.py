"""The studies report a collapsed estimator population as unreliable: a printed WARNING (why, what to change)
and ``log_z_reliable: false`` in metrics.json; a healthy one as reliable."""

import json

import torch

from ebmlab.cli import main


def test_gmm_pcd_run_records_whether_its_log_z_is_reliable(tmp_path):
    out = tmp_path / "gmm"
    args = ["gmm", "--preset", "tiny", "--methods", "pcd", "--log-z-walkers", "20", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    run = json.loads((out / "metrics.json").read_text())["runs"]["pcd"]["0"]
    assert run["log_z_reliable"] is True
    assert "log_z_unreliable_reason" not in run


def test_digits_pcd_quick_run_collapses_and_says_so(mnist_dir, tmp_path, capsys):
    """The lda quick preset trained 240 PCD updates: the estimator population resamples about 20 times onto one
    ancestor, its log Z is nats off with the SE at sqrt(log 2), and the run says so instead of reporting it."""
    torch.set_num_threads(1)
    out = tmp_path / "mnist"
    args = ["mnist", "--space", "lda", "--preset", "quick", "--methods", "pcd", "--iters", "240"]
    assert main([*args, "--data-dir", str(mnist_dir), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "WARNING pcd seed 0: the estimator population's genealogy has collapsed" in printed
    assert "log_z_walkers" in printed
    run = json.loads((out / "metrics.json").read_text())["runs"]["pcd"]["0"]
    assert run["log_z_reliable"] is False and run["estimator_ancestors"] == 1
    assert abs(run["log_z_error"]) > 1.0 and "log_z_unreliable_reason" in run
