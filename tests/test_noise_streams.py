"""Per-rank noise streams (Trainer(noise="per-rank")): counter-based seeds, reproducible and resumable
runs, no replicated draw, and checkpoints that say which noise they were made with."""

import pytest
import torch

from ebmlab.distributed import run_local, stream_seed
from ebmlab.energies import Gaussian
from ebmlab.sampling.kernels import Move
from ebmlab.training import Trainer, negative_phase

D = torch.float64


def trainer(noise="per-rank", coll=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randn(200, 3, generator=g, dtype=D) + 1
    energy = Gaussian(torch.zeros(3, dtype=D))
    phase = negative_phase("jarzynski", move=Move(step_size=0.05), ess_threshold=0.9, resampler="multinomial")
    kw = {} if coll is None else {"collective": coll}
    opt = torch.optim.SGD(energy.parameters(), lr=0.05)
    return Trainer(energy, data, opt, phase, n_walkers=80, generator=g, noise=noise, **kw)


def test_stream_seeds_differ_across_iterations_and_ranks():
    seeds = {stream_seed(7, step, rank) for step in range(200) for rank in range(8)}
    assert len(seeds) == 1600 and all(0 <= s < 2**63 for s in seeds)
    assert stream_seed(7, 0, 0) != stream_seed(8, 0, 0)


def test_per_rank_run_is_reproducible_and_resumable(tmp_path):
    straight = trainer()
    straight.run(12, progress=False)
    again = trainer()
    again.run(12, progress=False)
    assert again.history == straight.history
    first = trainer()
    first.run(5, checkpoint_path=tmp_path / "c.pt", progress=False)
    resumed = trainer()
    resumed.resume(tmp_path / "c.pt")
    resumed.run(12, progress=False)
    assert resumed.history == straight.history
    assert torch.equal(resumed.walkers.x, straight.walkers.x)
    with pytest.raises(ValueError, match="noise"):  # the checkpoint records its noise mode
        trainer("replicated").resume(tmp_path / "c.pt")


def test_unknown_noise_mode_is_refused():
    with pytest.raises(ValueError, match="noise must be one of"):
        trainer("shared")


def two_process_run(coll):
    out = []
    for _ in range(2):
        t = trainer(coll=coll)
        t.run(10, progress=False)
        out.append((t.history, coll.gather(t.walkers.x)))
    return out


def test_per_rank_two_processes_are_deterministic():
    ranks = run_local(two_process_run, 2)
    (h0, x0), (h1, x1) = ranks[0]
    assert h0 == h1 and torch.equal(x0, x1)  # the same launch twice
    assert ranks[1][0][0] == h0  # every process reports the same global history
    single = trainer()
    single.run(10, progress=False)
    assert not torch.equal(single.walkers.x, x0)  # another run: each process draws its own noise
    assert all(abs(r["log_z_est"] - s["log_z_est"]) < 1.0 for r, s in zip(h0, single.history))
