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
