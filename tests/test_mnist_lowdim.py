"""The imbalanced-digit study in a projected space: projection and class regions, the CLI end to end,
and clear errors for bad --space / --dim."""

import json
from types import SimpleNamespace

import pytest
import torch

from ebmlab.cli import main as cli_main
from ebmlab.data.mnist import load_mnist
from ebmlab.data.projection import check_space_dim, fit_projection
from ebmlab.data.subsets import imbalanced_digit_split
from ebmlab.experiments.mnist import run_study
from ebmlab.experiments.mnist_config import PRESETS, preset
from ebmlab.metrics.regions import RegionClassifier


@pytest.fixture(scope="module")
def digits(mnist_dir):
    return load_mnist(mnist_dir)


def _lda(digits, seed: int):
    split = imbalanced_digit_split(*digits, ebm_unit=120, heldout_unit=60, seed=seed)
    proj = fit_projection("lda", 2, split.ebm.images, split.ebm.labels, scale=5.0)
    regions = RegionClassifier.fit(proj(split.classifier.images), split.classifier.labels)
    return split, proj, regions


def test_projection_and_classifier_are_reproducible_and_follow_the_split_seed(digits):
    split, proj, regions = _lda(digits, 0)
    again_split, again_proj, again_regions = _lda(digits, 0)
    x = proj(split.ebm.images)
    assert x.shape == (840, 2) and torch.equal(x, again_proj(again_split.ebm.images))
    held = proj(split.heldout.images)
    assert torch.equal(regions(held), again_regions(held))
    # standardised then scaled: mean 0, standard deviation 5 over the fitting digits
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.full((2,), 5.0), rtol=1e-4)
    # the classes separate in the 2-D LDA space (94% held-out accuracy measured)
    assert regions.accuracy(held, split.heldout.labels) > 0.9
    _, other_proj, _ = _lda(digits, 1)
    assert not torch.allclose(other_proj(split.ebm.images), x)


def test_pca_projection_is_label_free_and_whitened(digits):
    split = imbalanced_digit_split(*digits, ebm_unit=120, heldout_unit=60, seed=0)
    proj = fit_projection("pca", 8, split.ebm.images, split.ebm.labels, scale=3.0)
    shuffled = fit_projection(
        "pca",
        8,
        split.ebm.images,
        split.ebm.labels[torch.randperm(840, generator=torch.Generator().manual_seed(0))],
        scale=3.0,
    )
    x = proj(split.ebm.images)
    assert torch.equal(x, shuffled(split.ebm.images))
    cov = torch.cov(x.double().T, correction=0)
    assert torch.allclose(cov, 9.0 * torch.eye(8, dtype=torch.float64), atol=1e-3)


@pytest.mark.parametrize(
    ("space", "dim", "message"),
    [
        ("lda", 3, "at most 2 dimensions"),
        ("lda", 0, "positive integer"),
        ("pca", 785, "up to 784"),
        ("digits8x8", 32, "64 pixels"),
        ("pixels", 2, "--dim applies to --space lda or pca"),
        ("voxels", None, "unknown space"),
    ],
)
def test_bad_space_and_dim_are_value_errors(space, dim, message):
    with pytest.raises(ValueError, match=message):
        check_space_dim(space, dim, 3)


def test_presets_per_space():
    assert preset("lda", "cpu").dim == 2 and preset("pca", "cpu").dim == 8 and preset("pca", "cpu", dim=2).exact
    assert sorted(PRESETS["pixels"]) == ["cpu", "paper", "quick"] and sorted(PRESETS["lda"]) == ["cpu", "quick"]
    with pytest.raises(ValueError, match="preset 'paper' exists for --space pixels"):
        preset("lda", "paper")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "lda", "--dim", "3"], "at most 2 dimensions"),
        (["--space", "pca", "--dim", "0"], "positive integer"),
        (["--space", "pixels", "--dim", "2"], "--dim applies to --space lda or pca"),
        (["--space", "pca", "--preset", "paper"], "preset 'paper' exists for --space pixels"),
        (["--cess-target", "0"], "cess_target must lie in (0, 1]"),
        (["--cess-target", "1.5"], "cess_target must lie in (0, 1]"),
    ],
)
def test_cli_bad_space_or_dim_exits_2_with_a_message(args, message, capsys, tmp_path):
    assert cli_main(["mnist", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "ebmlab mnist: error: " in err and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"), [(["--space", "voxels"], "invalid choice"), (["--dim", "two"], "invalid int")]
)
def test_cli_unparseable_space_or_dim_is_a_usage_error(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["mnist", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def _run(mnist_dir, out, *args):
    return cli_main(
        ["mnist", *args, "--preset", "quick", "--data-dir", str(mnist_dir), "--out", str(out), "--no-progress"]
    )


def _tv(masses, target):
    return 0.5 * sum(abs(a - b) for a, b in zip(masses, target))


def test_cli_lda_quick_end_to_end(mnist_dir, tmp_path):
    """`ebmlab mnist --space lda --preset quick`: exact model masses and log Z by quadrature beside the
    walker fractions, AIS and estimator-population estimates, over training; the PNGs; resume."""
    torch.set_num_threads(1)
    out = tmp_path / "lda"
    assert _run(mnist_dir, out, "--space", "lda") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    cfg, target = PRESETS["lda"]["quick"], metrics["target_fractions"]
    assert metrics["space"] == "lda" and metrics["config"]["dim"] == 2 and metrics["seeds"] == [0]
    ev = metrics["evaluation"]
    assert ev["svc_heldout_accuracy"] > 0.9 and ev["grid"]["cells_per_axis"] == cfg.grid_cells
    for method in ("jarzynski", "pcd", "cd"):
        run = metrics["runs"][method]["0"]
        traj = run["trajectory"]
        assert run["status"] == "ok" and traj["step"] == list(range(cfg.eval_every - 1, cfg.iters, cfg.eval_every))
        for kind in ("model", "walker", "ais", "estimator"):
            for m, tv in zip(traj[f"{kind}_masses"], traj[f"{kind}_tv"]):
                assert sum(m) == pytest.approx(1.0) and tv == pytest.approx(_tv(m, target))
        # every method's model has an unbiased log Z from the estimator population, and an exact one
        for est, exact, err in zip(traj["log_z_est"], traj["log_z_exact"], traj["log_z_error"]):
            assert err == pytest.approx(est - exact)
        assert all(se > 0 for se in traj["log_z_se"]) and all(e < 1e-6 for e in traj["edge_mass"])
        assert ("log_z_est_coupled" in run) == (method == "jarzynski")
        assert all(1 <= a <= cfg.log_z_walkers for a in traj["estimator_ancestors"])
        quad = run["final"]["quadrature"]
        assert sum(quad["masses"]) == pytest.approx(1.0) and quad["mass_error_wide"] < 1e-9, quad
        assert run["final"]["quadrature_mass_error"] == max(quad["mass_error_refine"], quad["mass_error_wide"])
        assert run["final"]["ais_log_z_error"] == pytest.approx(run["final"]["ais"]["log_z"] - quad["log_z"])
        assert metrics["summary"][method]["model_tv_mean"] == pytest.approx(run["model_tv"])
    for name in ("masses.png", "tv.png", "cross_entropy.png", "density.png", "log_z.png"):
        assert (out / name).stat().st_size > 10_000, name
    assert _run(mnist_dir, out, "--space", "lda", "--resume", "--methods", "cd") == 0
    assert json.loads((out / "metrics.json").read_text())["runs"]["cd"] == metrics["runs"]["cd"]


def test_cli_pca_quick_reports_ais_masses_with_standard_errors(mnist_dir, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "pca"
    assert _run(mnist_dir, out, "--space", "pca", "--methods", "jarzynski") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    run = metrics["runs"]["jarzynski"]["0"]
    final = run["final"]["ais"]  # the larger AIS run of the final model
    assert metrics["config"]["dim"] == 8 and "grid" not in metrics["evaluation"] and "quadrature" not in run["final"]
    assert sum(final["masses"]) == pytest.approx(1.0) and all(s > 0 for s in final["masses_se"])
    assert final["particles"] == PRESETS["pca"]["quick"].final_ais_particles
    assert run["model_masses"] == run["ais_masses"] and run["model_masses_se"] == run["ais_masses_se"]
    assert all(s > 0 for s in run["model_masses_se"]) and "log_z_exact" not in run
    assert (out / "masses.png").is_file() and not (out / "density.png").exists()


def test_cli_mala_and_ess_control_reach_the_walkers(mnist_dir, tmp_path):
    """--kernel mala gives acceptance rates in (0, 1]; --cess-target records the committed update fraction,
    and with a target of 1 every update shrinks (fraction < 1) while the run stays finite."""
    torch.set_num_threads(1)
    out = tmp_path / "mala"
    args = ("--space", "lda", "--methods", "jarzynski,pcd", "--kernel", "mala", "--cess-target", "1", "--iters", "20")
    assert _run(mnist_dir, out, *args, "--walkers", "200") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["kernel"] == "mala" and metrics["config"]["cess_target"] == 1
    jar, pcd = metrics["runs"]["jarzynski"]["0"], metrics["runs"]["pcd"]["0"]
    assert 0 < jar["accept_rate"] <= 1 and 0 < pcd["accept_rate"] <= 1
    assert 0 < jar["mean_update_fraction"] < 1 and "mean_update_fraction" not in pcd


def test_projected_spaces_refuse_torchrun(tmp_path):
    two = SimpleNamespace(world_size=2, is_main=True)
    with pytest.raises(ValueError, match="use --space pixels under torchrun"):
        run_study(PRESETS["lda"]["quick"], ["pcd"], [0], tmp_path, collective=two)
