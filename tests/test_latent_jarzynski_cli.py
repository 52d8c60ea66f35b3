"""`ebmlab latent --sampler jarzynski` quick runs end to end (toy-prior with the side-by-side figure, generate
with DAMC posterior chains, anomaly with the -log p(x) score), several samplers in one study, JSON fields, PNGs,
and option errors."""

import json

import pytest

from ebmlab.cli import main
from ebmlab.experiments.latent.loglik import loglik_warnings


def _run(out, *extra):
    argv = ["latent", *extra, "--preset", "quick", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return json.loads((out / "metrics.json").read_text())


def _png(path):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def test_toy_prior_jarzynski_and_comparison(tmp_path):
    _run(tmp_path / "lebm", "--task", "toy-prior", "--sampler", "lebm")
    out = tmp_path / "jarzynski"
    metrics = _run(out, "--task", "toy-prior", "--sampler", "jarzynski", "--compare-with", str(tmp_path / "lebm"))
    run = metrics["runs"]["jarzynski"]["0"]
    assert run["status"] == "ok" and run["log_z_source"] == "walkers"
    for key in ("kl_true_vs_prior", "log_z_quadrature", "loglik", "loglik_se", "loglik_quadrature"):
        assert isinstance(run[key], float), key
    assert run["kl_true_vs_prior"] >= 0 and run["loglik_se"] > 0
    assert abs(run["log_z_prior_walkers"] - run["log_z_quadrature"]) < 0.05  # four iterations from log Z = 0
    _png(out / "toy_prior_jarzynski_seed0.png")
    _png(out / "toy_prior_comparison_seed0.png")
    _png(out / "loglik_check_jarzynski_seed0.png")


def test_generate_jarzynski_damc_posterior(tmp_path, mnist_dir):
    out = tmp_path / "out"
    metrics = _run(
        out, "--task", "generate", "--sampler", "jarzynski", "--posterior", "damc", "--data-dir", str(mnist_dir)
    )
    run = metrics["runs"]["jarzynski"]["0"]
    assert run["sampler_config"]["name"] == "jarzynski" and run["sampler_config"]["posterior"] == "damc"
    assert "diffusion" in run["parameters"] and "mse_ema_q" in run["amortisation_final"]
    for key in ("test_mse", "frechet_sampler", "loglik", "loglik_se", "log_z_prior_walkers", "log_z_prior_ais"):
        assert isinstance(run[key], float), key
    check = run["loglik_ais_check"]
    assert check["n_images"] == 2 and check["ais_se"] > 0 and isinstance(check["agree"], bool)
    assert len(check["ais_temperatures"]) == 2 and min(check["ais_temperatures"]) >= 1
    assert all(len(check["per_image"][k]) == 2 for k in ("is", "is_se", "ais", "ais_se", "is_minus_ais_in_se"))
    assert run["evals"] and all("test_mse" in r for r in run["evals"])
    _png(out / "samples_jarzynski_seed0.png")
    _png(out / "reconstructions_jarzynski_seed0.png")
    _png(out / "loglik_check_jarzynski_seed0.png")


def test_anomaly_reports_the_normalised_score(tmp_path, mnist_dir):
    metrics = _run(
        tmp_path, "--task", "anomaly", "--heldout-digit", "7", "--sampler", "jarzynski", "--data-dir", str(mnist_dir)
    )
    run = metrics["runs"]["jarzynski"]["0"]
    assert 0 <= run["auprc_neg_loglik"] <= 1 and 0 <= run["auprc"] <= 1
    assert run["log_z_source"] == "walkers" and isinstance(run["loglik_normal"], float)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--task", "generate", "--sampler", "lebm", "--posterior", "damc"], "--posterior chooses the jarzynski"),
        (["--task", "generate", "--sampler", "jarzynski", "--compare-with", "x"], "only to --task toy-prior"),
        (["--task", "toy", "--sampler", "jarzynski"], "use --task toy-prior"),
        (["--task", "toy-prior", "--sampler", "damc", "--energy-reg", "-0.1"], "--energy-reg) must be a finite"),
    ],
)
def test_bad_options(extra, match, tmp_path, capsys):
    assert main(["latent", *extra, "--out", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err


def test_failed_log_likelihood_checks_are_reported():
    ok = {"loglik_ais_check": {"agree": True, "is_minus_ais_in_se": 1.2}, "loglik_minus_quadrature_in_se": -2.9}
    bad_ais = {"loglik_ais_check": {"agree": False, "is_minus_ais_in_se": -83.7}}
    bad_quad = {"loglik_ais_check": {"agree": True, "is_minus_ais_in_se": 0.1}, "loglik_minus_quadrature_in_se": 355.1}
    assert loglik_warnings({0: ok, 1: {"status": "failed"}}) == []
    notes = loglik_warnings({0: ok, 1: bad_ais, 2: bad_quad})
    assert len(notes) == 2
    assert notes[0].startswith("seed 1: WARNING") and "-83.7 SE" in notes[0]
    assert notes[1].startswith("seed 2: WARNING") and "+355.1 SE from its quadrature" in notes[1]


def test_non_finite_prior_weights_mark_the_seed_diverged_and_the_others_run(tmp_path, monkeypatch):
    """Seed 0's prior log-weights turn NaN at its second iteration: the run is recorded as diverged (not a
    ValueError that would end the seed grid) and seed 1 still runs."""
    from dataclasses import replace

    import torch

    from ebmlab.latent import weighted_prior

    real, calls = weighted_prior.advance_populations, []

    def poisoned(pops, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # seed 0, iteration 1
            pops = replace(pops, walkers=replace(pops.walkers, log_w=torch.full_like(pops.walkers.log_w, float("nan"))))
        return real(pops, *args, **kwargs)

    monkeypatch.setattr(weighted_prior, "advance_populations", poisoned)
    out = tmp_path / "out"
    argv = ["latent", "--task", "toy-prior", "--sampler", "jarzynski", "--preset", "quick", "--iters", "3"]
    assert main([*argv, "--seeds", "0,1", "--out", str(out), "--no-progress"]) == 1
    runs = json.loads((out / "metrics.json").read_text())["runs"]["jarzynski"]
    assert runs["0"]["status"] == "diverged" and runs["0"]["step"] == 1
    assert "log-weights became NaN or infinite" in runs["0"]["error"]
    assert runs["1"]["status"] == "ok"


def _numbers(run):
    """A run's results without its timings (at any depth) and recorded settings."""
    if not isinstance(run, dict):
        return run
    return {k: _numbers(v) for k, v in run.items() if "time" not in k and k != "config"}


def test_several_samplers_in_one_study(tmp_path, capsys):
    """--sampler lebm,damc,jarzynski runs every (sampler, seed): runs keyed by sampler then seed, summary by
    sampler, one headline per sampler, the comparison figure; each run equals the same run made alone."""
    out = tmp_path / "all"
    metrics = _run(out, "--task", "toy-prior", "--sampler", "damc,lebm,jarzynski", "--seeds", "0,1")
    samplers = ["damc", "lebm", "jarzynski"]  # in the order given
    assert metrics["samplers"] == samplers and metrics["config"]["samplers"] == samplers
    assert list(metrics["runs"]) == samplers and all(list(metrics["runs"][s]) == ["0", "1"] for s in samplers)
    assert list(metrics["summary"]) == samplers and all(metrics["summary"][s]["n_seeds"] == 2 for s in samplers)
    printed = capsys.readouterr().out
    assert all(f"toy-prior_{s} kl_true_vs_prior:" in printed for s in samplers)
    _png(out / "toy_prior_comparison_seed1.png")
    alone = _run(tmp_path / "alone", "--task", "toy-prior", "--sampler", "jarzynski", "--seeds", "1")
    assert _numbers(alone["runs"]["jarzynski"]["1"]) == _numbers(metrics["runs"]["jarzynski"]["1"])


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--task", "toy-prior", "--sampler", "lebm,damc", "--posterior", "damc"], "--posterior chooses the jarzynski"),
        (["--task", "toy", "--sampler", "lebm,jarzynski"], "use --task toy-prior"),
        (["--task", "toy", "--sampler", "lebm,damc", "--preset", "lebm-official"], "for --sampler lebm only, not damc"),
    ],
)
def test_sampler_list_errors(extra, match, tmp_path, capsys):
    assert main(["latent", *extra, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


def test_unknown_sampler_in_a_list_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["latent", "--task", "toy", "--sampler", "lebm,mcmc", "--out", str(tmp_path)])
    assert "unknown name(s) ['mcmc']" in capsys.readouterr().err
