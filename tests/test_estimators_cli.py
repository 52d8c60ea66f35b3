"""End-to-end: each `ebmlab estimators` experiment in its quick form writes JSON with the expected
fields and non-empty PNGs."""

import json

import pytest

from ebmlab.cli import main


def run(tmp_path, *args):
    assert main(["estimators", *args, "--out", str(tmp_path), "--no-progress"]) == 0
    name = args[args.index("--experiment") + 1]
    res = json.loads((tmp_path / f"{name}.json").read_text())
    for png in res["pngs"]:
        assert (tmp_path / png).stat().st_size > 10_000
    return res


def test_noise_scale_quick(tmp_path):
    res = run(tmp_path, "--experiment", "noise-scale", "--reps", "5", "--n1", "200", "--n2", "200")
    assert set(res["targets"]) == {"gauss-1d", "gmm-1d", "gauss-10d", "gmm-10d"}
    for r in res["targets"].values():
        assert set(r["mse"]) == {"is", "ris", "bridge-geometric", "bridge-optimal", "nce", "rlr"}
        assert all(len(v) == len(r["scales"]) for v in r["mse"].values())
        # optimal bridge, NCE and 2-state RLR are the same estimator
        assert r["mse"]["bridge-optimal"] == pytest.approx(r["mse"]["nce"], rel=1e-8)
        assert r["mse"]["bridge-optimal"] == pytest.approx(r["mse"]["rlr"], rel=1e-8)


def test_mis_quick(tmp_path):
    res = run(tmp_path, "--experiment", "mis", "--reps", "5")
    science = res["targets"]["science-2d"]
    assert set(science["reference_mse"]) <= set(science["mse"])
    assert all(v is not None and v > 0 for v in science["mse"].values())


def test_equivalence_quick(tmp_path):
    res = run(tmp_path, "--experiment", "equivalence", "--n1", "300", "--n2", "300")
    for r in res["targets"].values():
        for key, check in r.items():
            if isinstance(check, dict) and "max_abs_diff" in check:
                assert check["max_abs_diff"] < 1e-10, key
        assert r["E7_standard_errors"]["max_rel_diff"] < 0.1


def test_nce_gmm_quick(tmp_path):
    res = run(tmp_path, "--experiment", "nce-gmm", "--dim", "3", "--n-data", "400", "--steps", "150")
    assert res["mode_masses"]["left"] + res["mode_masses"]["right"] == pytest.approx(1.0)
    for key in ("log_z_learned", "log_z_exact_student", "log_z_teacher", "log_z_posthoc_nce"):
        assert isinstance(res[key], float)
    assert len(res["history"]["step"]) == len(res["history"]["log_z"])


@pytest.mark.parametrize("experiment", ["ratio", "dimension", "offset", "proposals"])
def test_martino_axes_quick(tmp_path, experiment):
    """Each axis in its quick form: MSE, its SE and the CPU time per replicate for every estimator at every value."""
    res = run(tmp_path, "--experiment", experiment, "--reps", "4", "--n1", "100", "--n2", "100")
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
