"""``ebmlab scaling``: the dimension sweep end to end (quick preset), its data (8x8 pixel digits), points,
resume rules and plots."""

import json

import pytest
import torch

from ebmlab.cli import main as cli_main
from ebmlab.data.digits8x8 import load_digits8x8
from ebmlab.data.projection import fit_projection
from ebmlab.data.subsets import imbalanced_digit_split
from ebmlab.experiments.scaling.config import Mechanisms, point_config, points


def test_digits8x8_are_dequantised_pixels_with_every_coordinate_varying():
    images, labels = load_digits8x8(0)
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert float(images.min()) >= -1 and float(images.max()) < 1
    again, _ = load_digits8x8(0)
    assert torch.equal(images, again) and not torch.equal(images, load_digits8x8(1)[0])
    assert bool((images.flatten(1).std(0) > 0).all())  # dequantised: no constant pixel
    # the dequantisation noise stays inside one level: rounding recovers the integer pixels
    from sklearn.datasets import load_digits

    levels = torch.floor((images.double() + 1) * 17 / 2).squeeze(1)
    assert torch.equal(levels, torch.from_numpy(load_digits().images))
    split = imbalanced_digit_split(images, labels, ebm_unit=30, heldout_unit=8)
    assert split.ebm.class_counts(3) == [120, 60, 30] and split.heldout.class_counts(3) == [32, 16, 8]
    x = fit_projection("digits8x8", 64, split.ebm.images, split.ebm.labels, scale=3.0)(split.ebm.images)
    assert x.shape == (210, 64)
    assert torch.allclose(x.std(0, unbiased=False), torch.full((64,), 3.0), rtol=1e-3)


def test_points_and_configs():
    assert points(["pca", "digits8x8"], [2, 16]) == [("pca", 2), ("pca", 16), ("digits8x8", 64)]
    cfg = point_config("cpu", "pca", 32, Mechanisms(kernel="mala", walkers=8000, lr_ess_target=0.9))
    assert (cfg.dim, cfg.kernel, cfg.n_walkers, cfg.log_z_walkers, cfg.lr_ess_target) == (32, "mala", 8000, 8000, 0.9)
    assert cfg.mass_check is not None and cfg.split_increments
    assert point_config("cpu", "pca", 2).mass_check is None  # 2-D: quadrature
    with pytest.raises(ValueError, match="unknown space"):
        points(["lda"], [2])
    with pytest.raises(ValueError, match="dim"):
        points(["pca"], [785])
    with pytest.raises(ValueError, match="choose one"):
        point_config("cpu", "pca", 16, Mechanisms(cess_target=0.9, lr_ess_target=0.9))


def test_quick_sweep_end_to_end_and_resume(tmp_path, mnist_dir):
    out = tmp_path / "sweep"
    args = ["scaling", "--preset", "quick", "--out", str(out), "--data-dir", str(mnist_dir), "--no-progress"]
    assert cli_main([*args, "--methods", "jarzynski,pcd"]) == 0
    sweep = json.loads((out / "metrics.json").read_text())
    assert list(sweep["points"]) == ["pca2", "pca4", "digits8x8"]
    for name, point in sweep["points"].items():
        for method in ("jarzynski", "pcd"):
            run = point["runs"][method]["0"]
            assert run["status"] == "ok" and 0 <= run["model_tv"] <= 1
            assert {"resamplings_per_100", "estimator_resamplings_per_100", "cpu_time_s", "est_inc_var_param"} <= set(
                run
            )
            if name == "pca2":
                assert run["mass_source"] == "quadrature" and run["tv_reliable"]
            else:
                assert run["mass_source"].startswith("tempered SMC") and isinstance(run["tv_reliable"], bool)
                assert isinstance(run["unreliable_reasons"], list) and "chains_usable" in run
        assert (out / name / "metrics.json").exists()  # each point is a complete `ebmlab mnist` study
    jz = sweep["points"]["pca4"]["runs"]["jarzynski"]["0"]
    assert jz["inc_var_param"] >= 0 and jz["inc_var_kernel"] >= 0 and jz["estimator_log_z_z"] is not None
    for png in ("tv_vs_dim.png", "weights_vs_dim.png"):
        assert (out / png).stat().st_size > 10_000
    assert (out / "summary.csv").read_text().startswith("point,dim,method")
    # a resumed sweep reuses every finished run: identical numbers
    assert cli_main([*args, "--methods", "jarzynski,pcd", "--resume"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    strip = lambda s: {
        p: {m: {k: v for k, v in r["0"].items() if "time" not in k} for m, r in q["runs"].items()}
        for p, q in s["points"].items()
    }
    assert strip(again) == strip(sweep)
    # --recheck measures the final models again from their checkpoints: the same seeds, the same numbers
    assert cli_main([*args, "--methods", "jarzynski,pcd", "--resume", "--recheck"]) == 0
    rechecked = json.loads((out / "metrics.json").read_text())
    assert "pca4: rechecked 2 runs" in rechecked["notes"] and strip(rechecked) == strip(sweep)
    assert cli_main([*args, "--methods", "jarzynski,pcd", "--recheck"]) == 2  # needs --resume
    # other mechanisms into the same directory are refused (one line, exit 2)
    assert cli_main([*args, "--methods", "jarzynski,pcd", "--resume", "--kernel", "mala"]) == 2


def test_device_option_means_what_it_means_in_mnist(tmp_path, capsys):
    """--device as in every study: the sweep's spaces are projected, so they run on the CPU and cuda is refused
    in one line (here by the missing GPU, on a GPU machine by the projected space)."""
    assert cli_main(["scaling", "--preset", "quick", "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--device" in err and "Traceback" not in err and not (tmp_path / "o").exists()
