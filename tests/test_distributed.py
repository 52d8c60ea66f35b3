"""Walkers split across 2 gloo processes (spawned here) against one process with the same total walkers:
global ESS / log Z, global resampling (offspring and walker exchange), training equality, kill-and-resume.

Tolerances: quantities computed by reductions in another order agree to a few ulps (rel 1e-12);
training runs agree to 1e-12 after 50 iterations (see docs/distributed.md for the measured values).
"""

import json
import math
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from ebmlab.cli import main as main_cli
from ebmlab.distributed import LOCAL, free_port, run_local
from ebmlab.energies import Gaussian
from ebmlab.estimators.rlr import rlr
from ebmlab.experiments.gmm import PRESETS, GmmConfig, build_trainer, observe
from ebmlab.sampling import LangevinState, ess, ess_fraction, log_z_estimate, ula_propose
from ebmlab.sampling.kernels import Move
from ebmlab.sampling.walkers import Walkers, gather_walkers, resample, resample_local, walkers_to_dict
from ebmlab.training import Trainer, negative_phase

D = torch.float64
P = 2
SCHEMES = ["multinomial", "systematic", "stratified", "residual"]
REL = 1e-12  # reduction-order tolerance of float64 sums and log-sum-exps
TRAIN_TOL = 1e-12  # training runs (measured: <= 2e-14 absolute on values of order 1-50 after 50 iterations)
QUICK_TOL = 1e-12  # the quick preset, 2000 iterations (measured: <= 1e-13 absolute)


def population(n=64, seed=0):
    """Walkers with distinct positions, energy = sum(x), grad = x, spread-out log-weights, log_z_ref 3."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=D)
    log_w = 2.0 * torch.randn(n, generator=g, dtype=D)
    log_w[5] = -math.inf  # a walker with zero weight
    return Walkers(LangevinState(x, x.sum(1), x.clone()), log_w, torch.tensor(3.0, dtype=D))


def shard(walkers, coll):
    return replace(walkers, state=walkers.state.map(coll.split), log_w=coll.split(walkers.log_w))


def gathered(walkers, coll):
    if walkers is None:
        return None
    whole = walkers_to_dict(gather_walkers(walkers, coll))
    return {k: v for k, v in whole.items() if v is not None}


# -- workers: run in every process with its collective ------------------------------------------------
def walker_ops(coll):
    pop = population()
    mine = shard(pop, coll)
    out = {
        "ess": ess(mine.log_w, coll),
        "ess_frac": ess_fraction(mine.log_w, coll),
        "log_z": log_z_estimate(mine, coll),
        "resampled": {},
    }
    for scheme in SCHEMES:
        out["resampled"][scheme] = gathered(resample(mine, scheme, torch.Generator().manual_seed(7), coll), coll)
    local = resample_local(mine, "systematic", torch.Generator().manual_seed(7), coll)
    out["local"] = gathered(local, coll) | {"log_z": log_z_estimate(local, coll)}
    dead = Walkers(mine.state, torch.full_like(mine.log_w, -math.inf) if coll.rank == 1 else mine.log_w, mine.log_z_ref)
    try:
        resample_local(dead, "systematic", torch.Generator().manual_seed(7), coll)
        out["dead_shard"] = None
    except ValueError as exc:
        out["dead_shard"] = str(exc)
    # the noise a process draws for its walkers = its rows of one process's draw
    g = torch.Generator().manual_seed(3)
    out["noise_all"] = coll.gather(
        ula_propose(mine.x, torch.zeros_like(mine.x), 0.5, g, 1.0, coll.population_rows(mine.n))
    )
    chosen = torch.tensor([40, 3, 63, 0, 31, 32, 17])
    moved, rows = coll.select(chosen, mine.n)
    noise = ula_propose(mine.x[moved], torch.zeros_like(mine.x[moved]), 0.5, g, 1.0, rows)
    out["moved_noise"] = (moved + coll.rank * mine.n, noise)
    out["errors"] = {}
    for what, make in {
        "indivisible": lambda: build_trainer(GmmConfig(dim=2, n_data=20, n_walkers=21), "pcd", 0, coll),
        "different seeds": lambda: build_trainer(GmmConfig(dim=2, n_data=20, n_walkers=20), "pcd", coll.rank, coll),
    }.items():
        try:
            make()
            out["errors"][what] = None
        except ValueError as exc:
            out["errors"][what] = str(exc)
    return out


EQ_CFG = GmmConfig(dim=5, n_data=200, n_walkers=200, iters=50, ess_threshold=0.99)


def batched_trainer(coll):
    """Mini-batched walkers and data, two ULA steps per update, Adam, energy regulariser and clipping."""
    g = torch.Generator().manual_seed(0)
    data = torch.randn(300, 3, generator=g, dtype=D) + 1
    energy = Gaussian(torch.zeros(3, dtype=D))
    phase = negative_phase(
        "jarzynski", move=Move(step_size=0.05, n_steps=2), walker_batch=50, ess_threshold=0.95, resampler="multinomial"
    )
    return Trainer(
        energy,
        data,
        torch.optim.Adam(energy.parameters(), lr=0.01),
        phase,
        n_walkers=120,
        generator=g,
        data_batch=64,
        energy_reg=0.01,
        grad_clip=1.0,
        collective=coll,
    )


MALA_CFG = replace(EQ_CFG, kernel="mala", cess_target=0.99999, log_z_walkers=100)  # control active


def train(coll, cases=("jarzynski", "pcd", "cd", "batched", "mala")):
    out = {}
    for case in cases:
        if case == "batched":
            trainer = batched_trainer(coll)
            trainer.run(40, progress=False)
            extra = {}
        else:
            cfg, method = (MALA_CFG, "jarzynski") if case == "mala" else (EQ_CFG, case)
            trainer, model, _ = build_trainer(cfg, method, 0, coll)
            trainer.run(cfg.iters, progress=False)
            extra = observe(model, trainer, trainer.phase.weighted, 0.5 * (EQ_CFG.left + EQ_CFG.right))
        out[case] = {
            "history": trainer.history,
            "params": dict(trainer.energy.state_dict()),
            "walkers": gathered(trainer.walkers, coll),
            "estimator": gathered(trainer.estimator, coll),
            "summary": trainer.summary() | extra,
        }
    return out


def die_midway(coll, ckpt):
    trainer, _, _ = build_trainer(EQ_CFG, "jarzynski", 1, coll)

    def kill(tr, row):
        if tr.step_count == 27:
            os._exit(3)  # no clean-up: the processes die as if killed

    trainer.run(EQ_CFG.iters, checkpoint_path=ckpt, checkpoint_every=10, callback=kill, progress=False)


def resume_and_straight(coll, ckpt):
    resumed, _, _ = build_trainer(EQ_CFG, "jarzynski", 1, coll)
    resumed.resume(ckpt)
    start = resumed.step_count
    resumed.run(EQ_CFG.iters, progress=False)
    straight, _, _ = build_trainer(EQ_CFG, "jarzynski", 1, coll)
    straight.run(EQ_CFG.iters, progress=False)
    return {
        "start": start,
        **{
            name: {
                "history": t.history,
                "params": dict(t.energy.state_dict()),
                "walkers": gathered(t.walkers, coll),
                "estimator": gathered(t.estimator, coll),
            }
            for name, t in (("resumed", resumed), ("straight", straight))
        },
    }


MEANS, STDS, COUNTS = torch.tensor([0.0, 1.0, 0.5], dtype=D), torch.tensor([1.0, 1.5, 0.7], dtype=D), [300, 201, 0]


def rlr_samples(rank=None, world=P):
    """log_q (2, 3, N) of two batches of samples from Gaussian states 0 and 1 (state 2 unsampled), ordered by
    state; with ``rank``: that process's share of every state's samples, and its counts."""
    g = torch.Generator().manual_seed(0)
    xs = [MEANS[k] + STDS[k] * torch.randn(2, c, generator=g, dtype=D) for k, c in enumerate(COUNTS)]
    if rank is not None:
        xs = [torch.tensor_split(x, world, dim=1)[rank] for x in xs]
    x = torch.cat(xs, 1)  # (2, N)
    log_q = -0.5 * ((x[:, None, :] - MEANS[None, :, None]) / STDS[None, :, None]) ** 2
    return log_q, [v.shape[1] for v in xs]


def sharded_rlr(coll):
    log_q, counts = rlr_samples(coll.rank)
    known = {0: math.log(math.sqrt(2 * math.pi))}
    est = rlr(log_q, counts, known, collective=coll)
    bad = log_q.clone()
    if coll.rank == 1:
        bad[0, 0, 0] = math.nan
    try:
        rlr(bad, counts, known, collective=coll)
        error = None
    except ValueError as exc:
        error = str(exc)
    return {"est": est, "error": error}


# -- tests --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ops():
    return run_local(walker_ops, P)


def test_global_ess_and_log_z_equal_single_process(ops):
    single = population()
    for r in ops:
        assert float(r["ess"]) == pytest.approx(float(ess(single.log_w)), rel=REL)
        assert float(r["ess_frac"]) == pytest.approx(float(ess_fraction(single.log_w)), rel=REL)
        assert float(r["log_z"]) == pytest.approx(float(log_z_estimate(single)), rel=REL)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_global_resampling_equals_single_process(ops, scheme):
    """Same ancestors (offspring counts) as one process, and each walker's cache travels with it."""
    single = resample(population(), scheme, torch.Generator().manual_seed(7))
    for r in ops:
        got = r["resampled"][scheme]
        assert torch.equal(got["x"], single.x) and torch.equal(got["energy"], single.state.energy)
        assert torch.equal(got["grad"], single.state.grad)
        assert torch.equal(got["log_w"], torch.zeros_like(single.log_w))
        assert float(got["log_z_ref"]) == pytest.approx(float(single.log_z_ref), rel=REL)
    pop = population()
    ancestors = torch.cdist(single.x, pop.x).argmin(1)
    assert torch.equal(pop.x[ancestors], single.x)
    assert int(torch.bincount(ancestors, minlength=pop.n)[5]) == 0  # the zero-weight walker has no offspring


def test_local_resampling_keeps_walkers_and_log_z(ops):
    pop = population()
    halves = torch.tensor_split(torch.arange(pop.n), P)
    for r in ops:
        got = r["local"]
        assert float(got["log_z"]) == pytest.approx(float(log_z_estimate(pop)), rel=REL)
        for idx in halves:  # offspring stay on their process, with the process's weight
            rows = torch.cdist(got["x"][idx], pop.x).argmin(1)
            assert torch.equal(pop.x[rows], got["x"][idx]) and bool(torch.isin(rows, idx).all())
            share = torch.logsumexp(pop.log_w[idx], 0) - math.log(idx.numel())
            assert torch.allclose(got["log_w"][idx] + got["log_z_ref"], share + pop.log_z_ref, rtol=0, atol=1e-12)


def test_noise_rows_reproduce_single_process_draw(ops):
    pop = population()
    g = torch.Generator().manual_seed(3)
    full = ula_propose(pop.x, torch.zeros_like(pop.x), 0.5, g, 1.0)
    chosen = torch.tensor([40, 3, 63, 0, 31, 32, 17])
    sub = ula_propose(pop.x[chosen], torch.zeros_like(pop.x[chosen]), 0.5, g, 1.0)
    for r in ops:
        assert torch.equal(r["noise_all"], full)
    for r in ops:
        idx, noise = r["moved_noise"]
        pos = torch.tensor([chosen.tolist().index(i) for i in idx.tolist()], dtype=torch.long)
        assert torch.equal(noise, sub[pos])


def test_clear_errors(ops):
    for r in ops:
        assert "multiple of the number of processes (2)" in r["errors"]["indivisible"]
        assert "differ between processes" in r["errors"]["different seeds"]
    assert "every walker of process 1 has zero" in ops[1]["dead_shard"]
    assert "another process" in ops[0]["dead_shard"]  # raised on every process: none is left waiting


def _assert_close(a, b, tol):
    """Nested histories / dicts of floats and tensors equal within ``tol`` (relative, absolute near 0)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_close(a[k], b[k], tol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_close(x, y, tol)
    elif isinstance(a, torch.Tensor):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=tol, atol=tol), float((a - b).abs().max())
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=tol, abs=tol)
    else:
        assert a == b


def test_training_equals_single_process():
    """GMM study (reduced: d = 5, n = N = 200, 50 iterations, eager resampling) for Jarzynski, PCD and CD,
    and mini-batched walkers/data: 2 processes give the same history, parameters and walkers as one."""
    single = train(LOCAL)
    for r in run_local(train, P):
        for case in single:
            _assert_close(r[case], single[case], TRAIN_TOL)
    assert sum(row["resampled"] for row in single["jarzynski"]["history"]) > 5
    assert sum(row["resampled"] for row in single["batched"]["history"]) > 2
    assert single["jarzynski"]["estimator"] is not None and single["batched"]["estimator"] is not None
    assert sum(row["est_resampled"] for row in single["jarzynski"]["history"]) > 0
    assert min(row["update_fraction"] for row in single["mala"]["history"]) < 1


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    ckpt = tmp_path / "c.pt"
    with pytest.raises(Exception):  # noqa: B017 - the child's exit surfaces as a generic error
        run_local(die_midway, P, ckpt)
    results = run_local(resume_and_straight, P, ckpt)
    for r in results:
        assert r["start"] == 20
        assert r["resumed"]["history"] == r["straight"]["history"]
        for part in ("params", "walkers", "estimator"):
            for k, v in r["straight"][part].items():
                assert torch.equal(torch.as_tensor(r["resumed"][part][k]), torch.as_tensor(v)), (part, k)
    # the checkpoint holds the whole population: one process resumes it too
    one, _, _ = build_trainer(EQ_CFG, "jarzynski", 1)
    one.resume(ckpt)
    one.run(EQ_CFG.iters, progress=False)
    _assert_close(one.history, results[0]["straight"]["history"], TRAIN_TOL)
    _assert_close(gathered(one.walkers, LOCAL), results[0]["straight"]["walkers"], TRAIN_TOL)


def test_rlr_with_samples_split_across_processes():
    """Each process passes its own samples; every process gets the pooled-sample estimate of one process."""
    log_q, counts = rlr_samples()
    single = rlr(log_q, counts, {0: math.log(math.sqrt(2 * math.pi))})
    assert bool(single.converged.all())
    truth = torch.log(STDS * math.sqrt(2 * math.pi))
    assert torch.allclose(single.log_z, truth.expand(2, 3), atol=5 * float(single.se.max()))
    results = run_local(sharded_rlr, P)
    for r in results:
        est = r["est"]
        for name in ("log_z", "se", "cov", "ess", "overlap"):
            assert torch.allclose(getattr(est, name), getattr(single, name), rtol=1e-9, atol=1e-12), name
        assert torch.equal(est.converged, single.converged)
        for name in ("anchored_overlap", "overlap_eigengap"):
            assert torch.allclose(est.diagnostics[name], single.diagnostics[name], rtol=1e-9, atol=1e-12), name
    assert "NaN or +inf" in results[1]["error"] and "another process" in results[0]["error"]


def _torchrun(*args, cwd):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(P),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "ebmlab",
        *args,
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_torchrun_gmm_equals_one_process(tmp_path):
    """`torchrun --nproc-per-node 2 -m ebmlab gmm` writes one set of files with the numbers of one process."""
    args = ["gmm", "--preset", "tiny", "--methods", "jarzynski", "--no-progress"]
    done = _torchrun(*args, "--out", str(tmp_path / "p2"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote ") == 1  # only rank 0 reports
    assert main_cli([*args, "--out", str(tmp_path / "p1")]) == 0
    two, one = (json.loads((tmp_path / p / "metrics.json").read_text())["runs"]["jarzynski"]["0"] for p in ("p2", "p1"))
    for key in ("mode_masses", "log_z_est", "log_z_exact", "kl_est", "ess_frac", "walker_frac_left", "means_e1"):
        _assert_close(two[key], one[key], TRAIN_TOL)
    assert two["trajectory"]["resample_steps"] == one["trajectory"]["resample_steps"]
    assert sorted(p.name for p in (tmp_path / "p2").rglob("*") if p.is_file()) == sorted(
        p.name for p in (tmp_path / "p1").rglob("*") if p.is_file()
    )


def test_torchrun_mnist_quick_matches_one_process(tmp_path, mnist_dir):
    """`torchrun --nproc-per-node 2 -m ebmlab mnist --space pixels --preset quick`: one set of files, and the
    numbers of one process up to float32 reduction order (the CNN energy runs in float32)."""
    args = ["mnist", "--space", "pixels", "--preset", "quick", "--methods", "jarzynski,pcd"]
    args += ["--data-dir", str(mnist_dir), "--no-progress"]
    done = _torchrun(*args, "--out", str(tmp_path / "p2"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("wrote ") == 1
    assert main_cli([*args, "--out", str(tmp_path / "p1")]) == 0
    runs = [json.loads((tmp_path / p / "metrics.json").read_text())["runs"] for p in ("p2", "p1")]
    for method in ("jarzynski", "pcd"):
        two, one = (r[method]["0"] for r in runs)
        # weighted fractions: float64 weights built from float32 CNN energies, which the two runs evaluate
        # in other batch compositions, so equal up to float32 rounding amplified by 1/T
        assert two["walker_masses"] == pytest.approx(one["walker_masses"], abs=1e-6)
        assert two["n_resamplings"] == one["n_resamplings"]
        assert two["model_masses"] == one["model_masses"]  # MALA chains: replicated on every process
        for key in ("frechet", "ess_frac"):
            assert two[key] == pytest.approx(one[key], rel=1e-4)
    assert sorted(p.name for p in (tmp_path / "p2").rglob("*") if p.is_file()) == sorted(
        p.name for p in (tmp_path / "p1").rglob("*") if p.is_file()
    )


def quick_preset_run(coll):
    trainer, model, _ = build_trainer(PRESETS["quick"], "jarzynski", 0, coll)
    trainer.run(PRESETS["quick"].iters, progress=False)
    cfg = PRESETS["quick"]
    return {
        "history": trainer.history,
        "params": dict(model.state_dict()),
        "summary": trainer.summary() | observe(model, trainer, True, 0.5 * (cfg.left + cfg.right)),
    }


@pytest.mark.slow
def test_quick_preset_equals_single_process():
    """The GMM quick preset (d = 50, n = N = 2000, 2000 iterations), Jarzynski: 2 processes vs 1."""
    single = quick_preset_run(LOCAL)
    for r in run_local(quick_preset_run, P):
        _assert_close(r, single, QUICK_TOL)
