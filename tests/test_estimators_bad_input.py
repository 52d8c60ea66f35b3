"""Bad input to every public estimator entry point: each case is a ValueError or TypeError whose message
says what was wrong (asserted by a fragment).  Plus the honest non-errors: offsets that float64 still
resolves converge without a warning."""

import math
import warnings

import pytest
import torch

from ebmlab.cli import main
from ebmlab.estimators import (
    ESTIMATORS,
    GaussianNoise,
    MixtureNoise,
    Problem,
    StudentTNoise,
    ais,
    bridge,
    get_estimator,
    importance_sampling,
    mis,
    nce_log_z,
    reciprocal_is,
    rlr,
)
from ebmlab.sampling.kernels import Move

D = torch.float64
INF = math.inf


def data(n=50):
    """(log phi(x), log q(x), log phi(y), log q(y)): target N(1, 0.7^2), proposal N(0, 2^2)."""
    g = torch.Generator().manual_seed(0)
    q = GaussianNoise(torch.zeros(1), 2.0)
    x = 1 + 0.7 * torch.randn(n, 1, generator=g, dtype=D)
    y = q.sample(n, g)
    lp = lambda z: -0.5 * ((z[:, 0] - 1) / 0.7) ** 2
    return lp(x), q.log_prob(x), lp(y), q.log_prob(y)


def with_entry(t, value, index=3):
    out = t.clone()
    out[..., index] = value
    return out


def pooled():
    lpx, lqx, lpy, lqy = data()
    return torch.stack([torch.cat([lpx, lpy]), torch.cat([lqx, lqy])]), [50, 50]


def disjoint():
    """Target zero at every proposal draw and proposal zero at every target draw."""
    lpx, lqx, lpy, lqy = data()
    return lpx, torch.full_like(lqx, -INF), torch.full_like(lpy, -INF), lqy


def energy(x):
    return 0.5 * (x**2).sum(-1)


X = torch.randn(20, 2, generator=torch.Generator().manual_seed(1), dtype=D)
G = torch.Generator().manual_seed(2)
Q2 = [GaussianNoise(torch.zeros(1), 1.0), GaussianNoise(torch.ones(1), 1.0)]
Y = torch.randn(8, 1, generator=torch.Generator().manual_seed(0), dtype=D)

CASES = {
    # importance sampling
    "is-nan": (lambda: importance_sampling(with_entry(data()[2], math.nan), data()[3]), ValueError, r"NaN or \+inf"),
    "is-plus-inf-q": (lambda: importance_sampling(data()[2], with_entry(data()[3], INF)), ValueError, r"\+inf"),
    "is-all-zero-target": (
        lambda: importance_sampling(torch.full((50,), -INF, dtype=D), data()[3]),
        ValueError,
        "target density is zero at every proposal draw",
    ),
    "is-shape": (lambda: importance_sampling(data()[2][:10], data()[3]), ValueError, "same shape"),
    "is-empty": (lambda: importance_sampling(torch.zeros(0), torch.zeros(0)), ValueError, "at least one"),
    "is-own-zero": (lambda: importance_sampling(data()[2], with_entry(data()[3], -INF)), ValueError, "zero density"),
    "is-string": (lambda: importance_sampling("abc", data()[3]), TypeError, "real-valued"),
    "is-bool": (lambda: importance_sampling(torch.ones(5, dtype=torch.bool), torch.zeros(5)), TypeError, "dtype"),
    "is-offset-1e300": (lambda: importance_sampling(data()[2] + 1e300, data()[3]), ValueError, "magnitude"),
    # reciprocal IS
    "ris-all-zero-proposal": (
        lambda: reciprocal_is(data()[0], torch.full((50,), -INF, dtype=D)),
        ValueError,
        "proposal density is zero at every target draw",
    ),
    "ris-own-zero": (lambda: reciprocal_is(with_entry(data()[0], -INF), data()[1]), ValueError, "zero density"),
    "ris-nan": (lambda: reciprocal_is(data()[0], with_entry(data()[1], math.nan)), ValueError, "NaN"),
    # bridge
    "bridge-disjoint": (lambda: bridge(*disjoint()), ValueError, "supports do not overlap"),
    "bridge-geometric-disjoint": (lambda: bridge(*disjoint(), alpha="geometric"), ValueError, "do not overlap"),
    "bridge-one-sided": (
        lambda: bridge(*data()[:2], torch.full((50,), -INF, dtype=D), data()[3]),
        ValueError,
        "target density is zero at every proposal draw",
    ),
    "bridge-alpha": (lambda: bridge(*data(), alpha="best"), ValueError, "alpha must be one of"),
    "bridge-power-range": (
        lambda: bridge(*data(), alpha="power", power=1.5),
        ValueError,
        r"power must lie in \[0, 1\]",
    ),
    "bridge-power-nan": (lambda: bridge(*data(), alpha="power", power=math.nan), ValueError, "power must be a finite"),
    "bridge-power-str": (lambda: bridge(*data(), alpha="power", power="half"), TypeError, "power must be"),
    "bridge-nu-zero": (lambda: bridge(*data(), nu=0.0), ValueError, "nu must be a positive finite"),
    "bridge-nu-nan": (lambda: bridge(*data(), nu=math.nan), ValueError, "nu must be a positive finite"),
    "bridge-nu-inf": (lambda: bridge(*data(), nu=INF), ValueError, "nu must be a positive finite"),
    "bridge-solver": (lambda: bridge(*data(), solver="brent"), ValueError, "solver must be one of"),
    "bridge-tol-zero": (lambda: bridge(*data(), tol=0.0), ValueError, "tol must be a positive"),
    "bridge-tol-negative": (lambda: bridge(*data(), tol=-1e-9), ValueError, "tol must be a positive"),
    "bridge-max-iter": (lambda: bridge(*data(), max_iter=-1), ValueError, "max_iter must be an integer >= 0"),
    "bridge-max-iter-float": (lambda: bridge(*data(), max_iter=2.5), ValueError, "max_iter must be an integer"),
    "bridge-batch": (
        lambda: bridge(*[t[None] for t in data()[:2]], *data()[2:]),
        ValueError,
        "share the batch shape",
    ),
    # NCE (normalizer only)
    "nce-disjoint": (lambda: nce_log_z(*disjoint()), ValueError, "supports do not overlap"),
    "nce-tol": (lambda: nce_log_z(*data(), tol=0), ValueError, "tol must be a positive"),
    "nce-max-iter": (lambda: nce_log_z(*data(), max_iter=-3), ValueError, "max_iter"),
    "nce-batch": (lambda: nce_log_z(*[t[None] for t in data()[:2]], *data()[2:]), ValueError, "share the batch shape"),
    "nce-plus-inf": (lambda: nce_log_z(with_entry(data()[0], INF), *data()[1:]), ValueError, r"\+inf"),
    # MIS
    "mis-weights": (lambda: mis(data()[2], data()[3][None], [50], weights="balance"), ValueError, "weights must be"),
    "mis-counts-sum": (lambda: mis(data()[2], data()[3][None], [40]), ValueError, "counts sum to 40"),
    "mis-counts-zero": (
        lambda: mis(data()[2], torch.stack([data()[3], data()[3]]), [50, 0]),
        ValueError,
        "every proposal needs at least one draw",
    ),
    "mis-shape": (lambda: mis(data()[2], data()[3], [50]), ValueError, "log_q must have shape"),
    "mis-own-zero": (lambda: mis(data()[2], with_entry(data()[3], -INF)[None], [50]), ValueError, "zero density"),
    "mis-counts-negative": (
        lambda: mis(data()[2], torch.stack([data()[3], data()[3]]), [60, -10]),
        ValueError,
        "non-negative",
    ),
    "mis-counts-fraction": (lambda: mis(data()[2], data()[3][None], [49.5]), ValueError, "integers"),
    "mis-all-zero-target": (
        lambda: mis(torch.full((50,), -INF, dtype=D), data()[3][None], [50]),
        ValueError,
        "target density is zero at every proposal draw",
    ),
    # RLR / MBAR
    "rlr-offset-1e300": (lambda: rlr(pooled()[0] + 1e300, pooled()[1]), ValueError, "magnitude"),
    "rlr-tol-zero": (lambda: rlr(*pooled(), tol=0.0), ValueError, "tol must be a positive"),
    "rlr-tol-nan": (lambda: rlr(*pooled(), tol=math.nan), ValueError, "tol must be a positive"),
    "rlr-max-iter": (lambda: rlr(*pooled(), max_iter=-1), ValueError, "max_iter must be an integer >= 0"),
    "rlr-sci-iter": (lambda: rlr(*pooled(), sci_iter=-2), ValueError, "sci_iter must be an integer >= 0"),
    "rlr-min-overlap": (lambda: rlr(*pooled(), min_overlap=2.0), ValueError, "min_overlap must lie in"),
    "rlr-known-nan": (lambda: rlr(*pooled(), {1: math.nan}), ValueError, "must be finite"),
    "rlr-known-index": (lambda: rlr(*pooled(), {2: 0.0}), ValueError, "only 2 states"),
    "rlr-known-list": (lambda: rlr(*pooled(), [0.0, 1.0]), TypeError, "known_log_z must be a mapping"),
    "rlr-chunk-size": (lambda: rlr(*pooled(), chunk_size=0), ValueError, "chunk_size must be an integer >= 1"),
    "rlr-callable-shape": (
        lambda: rlr(lambda a, b: torch.zeros(3, b - a), [50, 50]),
        ValueError,
        "must return",
    ),
    "rlr-callable-nan": (
        lambda: rlr(lambda a, b: torch.full((2, b - a), math.nan), [50, 50]),
        ValueError,
        r"log_q\(0, 100\) has 200 NaN",
    ),
    "rlr-one-dim": (lambda: rlr(pooled()[0][0], [100]), ValueError, "shape"),
    "rlr-disjoint": (
        lambda: rlr(torch.stack([torch.cat(disjoint()[0::2]), torch.cat(disjoint()[1::2])]), [50, 50]),
        ValueError,
        "does not overlap",
    ),
    # AIS
    "ais-step-zero": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("mala", 0.0), generator=G),
        ValueError,
        "step_size",
    ),
    "ais-step-nan": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("mala", math.nan), generator=G),
        ValueError,
        "step_size",
    ),
    "ais-step-negative": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("mala", -0.1), generator=G),
        ValueError,
        "step_size",
    ),
    "ais-log-z0-nan": (
        lambda: ais(energy, energy, X, math.nan, 3, move=Move("mala", 0.1), generator=G),
        ValueError,
        "log_z0 must be a finite",
    ),
    "ais-log-z0-inf": (
        lambda: ais(energy, energy, X, INF, 3, move=Move("mala", 0.1), generator=G),
        ValueError,
        "log_z0",
    ),
    "ais-betas-zero": (
        lambda: ais(energy, energy, X, 0.0, 0, move=Move("mala", 0.1), generator=G),
        ValueError,
        "betas",
    ),
    "ais-betas-bool": (
        lambda: ais(energy, energy, X, 0.0, True, move=Move("mala", 0.1), generator=G),
        ValueError,
        "betas",
    ),
    "ais-betas-order": (
        lambda: ais(energy, energy, X, 0.0, torch.tensor([0.0, 0.6, 0.4, 1.0]), move=Move("mala", 0.1), generator=G),
        ValueError,
        "increase strictly",
    ),
    "ais-kernel": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("hmc", 0.1), generator=G),
        ValueError,
        "kernel",
    ),
    "ais-n-steps": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("mala", 0.1, n_steps=0), generator=G),
        ValueError,
        "n_steps",
    ),
    "ais-no-move": (lambda: ais(energy, energy, X, 0.0, 3, generator=G), TypeError, "needs move="),
    "ais-move-and-old-keywords": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("mala", 0.1), step_size=0.1, generator=G),
        TypeError,
        "not both",
    ),
    "ais-x-nan": (
        lambda: ais(energy, energy, with_entry(X.T, math.nan).T, 0.0, 3, move=Move("mala", 0.1), generator=G),
        ValueError,
        "NaN or inf",
    ),
    "ais-energy-nan": (
        lambda: ais(energy, lambda x: energy(x) * math.nan, X, 0.0, 3, move=Move("mala", 0.1), generator=G),
        ValueError,
        "AIS cannot start: the energy or its gradient is NaN or infinite at",
    ),
    "ais-generator": (
        lambda: ais(energy, energy, X, 0.0, 3, move=Move("mala", 0.1), generator=None),
        TypeError,
        "generator",
    ),
    # noise distributions
    "gaussian-std-zero": (lambda: GaussianNoise(torch.zeros(2), 0.0), ValueError, "std must be positive"),
    "gaussian-std-nan": (lambda: GaussianNoise(torch.zeros(2), math.nan), ValueError, "std must be positive"),
    "gaussian-mean-inf": (lambda: GaussianNoise(torch.tensor([0.0, INF])), ValueError, "mean must be"),
    "student-df": (lambda: StudentTNoise(torch.zeros(2), 1.0, df=0), ValueError, "df must be an integer >= 1"),
    "student-scale": (lambda: StudentTNoise(torch.zeros(2), -1.0), ValueError, "scale must be positive"),
    "mixture-empty": (lambda: MixtureNoise([]), ValueError, "at least one component"),
    "mixture-weights": (lambda: MixtureNoise(Q2, [1.0, -1.0]), ValueError, "weights must be 2 positive"),
    # registry
    "registry-name": (lambda: get_estimator("mbar"), ValueError, "unknown estimator"),
    "problem-no-draws": (lambda: Problem(energy, Q2[:1]), ValueError, "needs draws"),
    "problem-counts-needed": (lambda: Problem(energy, Q2, y=Y), ValueError, "counts"),
    "problem-counts-sum": (lambda: Problem(energy, Q2, y=Y, counts=[4, 3]), ValueError, "counts sum to 7"),
    "problem-shapes": (lambda: Problem(energy, Q2[:1], x=torch.zeros(5, 2), y=Y), ValueError, "share batch and event"),
    "problem-draws-list": (lambda: Problem(energy, Q2[:1], y=[[0.0]]), TypeError, "tensors of draws"),
    "problem-proposals": (lambda: Problem(energy, [object()], y=Y), TypeError, "log_prob"),
    "problem-needs-x": (lambda: ESTIMATORS["ris"](Problem(energy, Q2[:1], y=Y)), ValueError, "needs target draws"),
    "problem-ais-generator": (
        lambda: ESTIMATORS["ais"](Problem(energy, Q2[:1], y=Y), move=Move("mala", 0.1)),
        ValueError,
        "generator",
    ),
    "problem-not-a-problem": (lambda: ESTIMATORS["is"](data()), TypeError, "expected an ebmlab.estimators.Problem"),
    "estimate-se-diff": (lambda: importance_sampling(*data()[2:]).se_diff(), ValueError, "se_diff needs"),
    "estimate-state": (lambda: importance_sampling(*data()[2:]).state(0), ValueError, "state"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_clear_error(name):
    call, error, fragment = CASES[name]
    with pytest.raises(error, match=fragment):
        call()


def test_every_public_entry_point_is_covered():
    covered = {name.split("-")[0] for name in CASES}
    assert {"is", "ris", "bridge", "nce", "mis", "rlr", "ais", "registry", "problem", "estimate"} <= covered
    assert len(CASES) >= 40


@pytest.mark.parametrize("offset", ["common", "per-state"])
def test_large_offsets_converge_without_warning(offset):
    """1e6 nats on every log density (or a different 1e6 multiple per state): converged, no warning,
    and the answer moves only by what rounding the inputs to float64 at that scale allows."""
    log_q, counts = pooled()
    base = rlr(log_q, counts)
    shift = torch.full((2, 1), 1e6, dtype=D) if offset == "common" else torch.tensor([[1e6], [2e6]], dtype=D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = rlr(log_q + shift, counts)
    assert est.all_converged
    expected = base.log_z + (shift[:, 0] - shift[0, 0])  # log Z of state k moves with its own shift
    assert torch.allclose(est.log_z, expected, atol=64 * 2.2e-16 * 2e6, rtol=0)


@pytest.mark.parametrize(
    "args",
    [
        ["--experiment", "nce-gmm", "--steps", "-5"],
        ["--experiment", "nce-gmm", "--dim", "-3"],
        ["--experiment", "nce-gmm", "--n-data", "0"],
        ["--experiment", "noise-scale", "--reps", "1"],
        ["--experiment", "noise-scale", "--n1", "abc"],
        ["--experiment", "mis", "--seed", "99999999999999999999999"],
    ],
)
def test_cli_rejects_bad_options_in_one_line(args, tmp_path, capsys):
    """Refused by argparse (exit 2) or by the settings' own check (one line, return code 2)."""
    try:
        code = main(["estimators", *args, "--out", str(tmp_path / "out")])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and args[2] in err
    assert not (tmp_path / "out").exists()


def test_cli_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("")
    assert main(["estimators", "--experiment", "equivalence", "--n1", "20", "--n2", "20", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "not a directory" in err and "Traceback" not in err
