"""End-to-end: each `ebmlab estimators` experiment under `--preset quick` writes study.json and metrics.json (its
run by experiment and seed, the summary over seeds) and non-empty PNGs; the study skeleton's shared options
(--seeds, --resume, --overwrite) and the deprecated --seed."""

import json

import pytest

from ebmlab.cli import main
from ebmlab.experiments.estimators.config import DEFAULT_SEEDS, PRESETS, EstimatorsConfig, preset
from ebmlab.experiments.estimators.nce_gmm import NceGmmConfig

EQUIV = ["estimators", "--experiment", "equivalence", "--preset", "quick", "--n1", "40", "--n2", "40"]


def metrics(out):
    return json.loads((out / "metrics.json").read_text())


def run(tmp_path, *args):
    """The seed-0 run of a quick experiment, after checking the files around it."""
    assert main(["estimators", *args, "--preset", "quick", "--out", str(tmp_path), "--no-progress"]) == 0
    exp = args[args.index("--experiment") + 1]
    m = metrics(tmp_path)
    assert m["experiment"] == exp and m["seeds"] == [0] and m["preset"] == "quick"
    assert json.loads((tmp_path / "study.json").read_text())["config"] == m["config"]
    assert m["summary"][exp]["n_seeds"] == 1 and m["pngs"]
    for png in m["pngs"]:
        assert png.endswith("_seed0.png") and (tmp_path / png).stat().st_size > 10_000
    res = m["runs"][exp]["0"]
    assert res["status"] == "ok" and res["experiment"] == exp and res["config"] == m["config"]
    return res


def test_noise_scale_quick(tmp_path):
    res = run(tmp_path, "--experiment", "noise-scale")
    assert (res["reps"], res["n1"], res["n2"]) == (5, 200, 200)
    assert set(res["targets"]) == {"gauss-1d", "gmm-1d", "gauss-10d", "gmm-10d"}
    for r in res["targets"].values():
        assert set(r["mse"]) == {"is", "ris", "bridge-geometric", "bridge-optimal", "nce", "rlr"}
        assert all(len(v) == len(r["scales"]) for v in r["mse"].values())
        # optimal bridge, NCE and 2-state RLR are the same estimator
        assert r["mse"]["bridge-optimal"] == pytest.approx(r["mse"]["nce"], rel=1e-8)
        assert r["mse"]["bridge-optimal"] == pytest.approx(r["mse"]["rlr"], rel=1e-8)


def test_mis_quick(tmp_path):
    res = run(tmp_path, "--experiment", "mis")
    science = res["targets"]["science-2d"]
    assert set(science["reference_mse"]) <= set(science["mse"])
    assert all(v is not None and v > 0 for v in science["mse"].values())
    summary = metrics(tmp_path)["summary"]["mis"]
    assert summary["science-2d/mis-dm/mse_mean"] == science["mse"]["mis-dm"]


def test_equivalence_quick(tmp_path):
    res = run(tmp_path, "--experiment", "equivalence")
    for r in res["targets"].values():
        for key, check in r.items():
            if isinstance(check, dict) and "max_abs_diff" in check:
                assert check["max_abs_diff"] < 1e-10, key
        assert r["E7_standard_errors"]["max_rel_diff"] < 0.1


def test_nce_gmm_quick(tmp_path):
    res = run(tmp_path, "--experiment", "nce-gmm")
    assert res["nce_config"] == {**res["nce_config"], "dim": 3, "n_data": 400, "steps": 150}
    assert res["mode_masses"]["left"] + res["mode_masses"]["right"] == pytest.approx(1.0)
    for key in ("log_z_learned", "log_z_exact_student", "log_z_teacher", "log_z_posthoc_nce"):
        assert isinstance(res[key], float)
    assert len(res["history"]["step"]) == len(res["history"]["log_z"])


@pytest.mark.parametrize("experiment", ["ratio", "dimension", "offset", "proposals"])
def test_martino_axes_quick(tmp_path, experiment):
    """Each axis in its quick form: MSE, its SE and the CPU time per replicate for every estimator at every value."""
    res = run(tmp_path, "--experiment", experiment)
    n = len(res["axis"]["values"])
    assert set(res["estimators"]) >= {"is", "ris", "bridge-geometric", "bridge-optimal", "nce", "rlr"}
    for name, r in res["estimators"].items():
        assert all(len(r[k]) == n for k in ("mse", "mse_se", "cpu_ms", "coverage")), name
        done = [i for i, m in enumerate(r["mse"]) if m is not None and m == m]
        assert done and all(r["cpu_ms"][i] > 0 and r["mse_se"][i] >= 0 for i in done), name
    # optimal bridge, NCE and 2-state RLR are one estimator
    assert res["estimators"]["nce"]["mse"] == pytest.approx(res["estimators"]["bridge-optimal"]["mse"], rel=1e-6)
    if experiment == "ratio":
        assert [a + b for a, b in res["sizes"]] == [200] * n
        assert all(v > 0 for v in res["nce_theta"]["param_mse"] + res["nce_theta"]["log_z_mse"])
    if experiment == "proposals":
        assert res["estimators"]["mis-deterministic-mixture"]["mse"][-1] > 0


def test_seeds_are_one_run_each_and_summarised(tmp_path):
    assert main([*EQUIV, "--seeds", "0,3", "--out", str(tmp_path / "both"), "--no-progress"]) == 0
    assert main([*EQUIV, "--seeds", "3", "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    both, one = metrics(tmp_path / "both"), metrics(tmp_path / "one")
    assert both["seeds"] == [0, 3] and set(both["runs"]["equivalence"]) == {"0", "3"}
    assert both["pngs"] == ["equivalence_seed0.png", "equivalence_seed3.png"]
    assert both["runs"]["equivalence"]["3"] == one["runs"]["equivalence"]["3"]  # a seed's run owes nothing to others
    key = "gauss-1d/E7_standard_errors/max_rel_diff"
    values = [both["runs"]["equivalence"][s]["targets"]["gauss-1d"]["E7_standard_errors"]["max_rel_diff"] for s in "03"]
    s = both["summary"]["equivalence"]
    assert s["n_seeds"] == 2 and values[0] != values[1]
    assert (s[f"{key}_min"], s[f"{key}_max"], s[f"{key}_mean"]) == (min(values), max(values), sum(values) / 2)


def test_seed_is_a_deprecated_alias_of_seeds(tmp_path, capsys):
    assert main([*EQUIV, "--seed", "2", "--out", str(tmp_path / "old"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "DeprecationWarning" in err and "--seeds" in err and len(err.strip().splitlines()) == 1
    assert main([*EQUIV, "--seeds", "2", "--out", str(tmp_path / "new"), "--no-progress"]) == 0
    assert metrics(tmp_path / "old")["runs"] == metrics(tmp_path / "new")["runs"]
    assert main([*EQUIV, "--seed", "2", "--seeds", "2", "--out", str(tmp_path / "x")]) == 2
    assert "give --seeds only" in capsys.readouterr().err


def test_resume_and_overwrite_rules(tmp_path, capsys):
    out = ["--out", str(tmp_path), "--no-progress"]
    assert main([*EQUIV, *out]) == 0
    run_file = tmp_path / "runs" / "equivalence_seed0.json"
    before, written = metrics(tmp_path), run_file.stat().st_mtime_ns
    assert main([*EQUIV, *out]) == 2  # a finished study is never overwritten silently
    assert "--resume" in capsys.readouterr().err
    assert main([*EQUIV, *out, "--resume"]) == 0  # the finished run is reused, not redone
    assert run_file.stat().st_mtime_ns == written and metrics(tmp_path)["runs"] == before["runs"]
    assert main([*EQUIV, *out, "--resume", "--n1", "41"]) == 2  # other settings: refused, naming them
    assert "n1" in capsys.readouterr().err
    assert main([*EQUIV, *out, "--resume", "--seeds", "0,1"]) == 0  # more seeds: the new one runs
    assert set(metrics(tmp_path)["runs"]["equivalence"]) == {"0", "1"}
    (tmp_path / "keep.txt").write_text("not the study's")
    assert main([*EQUIV, *out, "--overwrite", "--n1", "41"]) == 0
    assert metrics(tmp_path)["config"]["n1"] == 41 and (tmp_path / "keep.txt").exists()
    assert not (tmp_path / "equivalence_seed1.png").exists()  # the old study's plots went with it
    with pytest.raises(SystemExit):
        main([*EQUIV, *out, "--resume", "--overwrite"])


def test_options_that_do_not_apply_are_said_and_left_out(tmp_path, capsys):
    assert main([*EQUIV, "--reps", "3", "--steps", "9", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "note: --reps does not apply to the equivalence experiment (ignored)" in printed
    assert "note: --steps does not apply" in printed
    m = metrics(tmp_path)
    assert m["config"] == {"experiment": "equivalence", "preset": "quick", "n1": 40, "n2": 40}
    assert m["notes"] == [
        "--reps does not apply to the equivalence experiment (ignored)",
        "--steps does not apply to the equivalence experiment (ignored)",
    ]
    assert printed.count("does not apply") == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--reps", "1"], "--reps must be an integer >= 2, got 1"),
        (["--n2", "1"], "--n2 must be an integer >= 2"),
        (["--experiment", "nce-gmm", "--steps", "-5"], "--steps must be an integer >= 1"),
        (["--experiment", "nce-gmm", "--dim", "-3"], "--dim must be an integer >= 1"),
        (["--experiment", "nce-gmm", "--n-data", "3"], "--n-data must be an integer >= 4"),
    ],
)
def test_bad_sizes_are_one_line(tmp_path, capsys, extra, message):
    args = ["estimators", "--experiment", "noise-scale", *extra, "--out", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before anything is written


@pytest.mark.parametrize("extra", [["--preset", "paper"], ["--seeds", str(2**63)], ["--reps", "two"]])
def test_bad_options_are_refused_by_the_parser(tmp_path, extra):
    with pytest.raises(SystemExit) as exc:
        main(["estimators", "--experiment", "mis", *extra, "--out", str(tmp_path / "o")])
    assert exc.value.code == 2


def test_cpu_preset_is_the_earlier_defaults():
    gmm = NceGmmConfig()
    for exp, cfg in PRESETS["cpu"].items():
        expected = {"reps": 100, "n1": 500, "n2": 500, "steps": gmm.steps, "dim": gmm.dim, "n_data": gmm.n_data}
        assert cfg.used() == {k: v for k, v in expected.items() if k in cfg.used()}, exp
    assert (gmm.steps, gmm.dim, gmm.n_data) == (1500, 50, 10_000)
    assert DEFAULT_SEEDS["cpu"] == [0]
    assert set(PRESETS["quick"]) == set(PRESETS["cpu"])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: EstimatorsConfig("mis", reps=1), "--reps must be an integer >= 2, got 1"),
        (lambda: EstimatorsConfig("mis", reps=True), "--reps must be an integer"),
        (lambda: EstimatorsConfig("mis", reps=5.0), "--reps must be an integer"),
        (lambda: EstimatorsConfig("mis"), "needs --reps"),
        (lambda: EstimatorsConfig("mis", reps=5, n1=10), "--n1 does not apply to the mis experiment"),
        (lambda: EstimatorsConfig("bogus"), "unknown experiment"),
        (lambda: preset("mis", "paper"), "unknown preset 'paper'"),
        (lambda: preset("nce-gmm", "quick", n_data=2), "--n-data must be an integer >= 4, got 2"),
    ],
)
def test_config_is_validated_at_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()
