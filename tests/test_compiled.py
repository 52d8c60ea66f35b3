"""The compiled Langevin step (``compile=True``) against the eager reference: same noise, equal to
floating-point rounding; skipped where torch.compile cannot build a graph (no C++ compiler)."""

import pytest
import torch

from ebmlab.energies import MLPEnergy
from ebmlab.sampling import init_state, mala, ula
from ebmlab.sampling.compiled import compile_available, run_compiled
from ebmlab.sampling.kernels import Move
from ebmlab.training import Trainer, negative_phase

D = torch.float64
needs_compile = pytest.mark.skipif(not compile_available(), reason="torch.compile cannot build graphs here")


def mlp(seed=0):
    torch.manual_seed(seed)
    return MLPEnergy(3, hidden=(16,), confinement_std=1.0, zero_init_output=False).to(D)


@needs_compile
def test_compiled_ula_and_mala_equal_eager():
    energy = mlp()
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    eager, comp = init_state(energy, x), init_state(energy, x)
    ge, gc = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    for _ in range(3):
        eager, info_e = ula(eager, energy, 0.05, ge)
        comp, info_c = ula(comp, energy, 0.05, gc, compile=True)
        inc_e, inc_c = info_e.increment, info_c.increment
        for a, b in ((eager.x, comp.x), (eager.energy, comp.energy), (eager.grad, comp.grad), (inc_e, inc_c)):
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
        assert not comp.x.requires_grad and not comp.energy.requires_grad
    with torch.no_grad():
        energy.net[-1].bias.add_(0.3)  # a parameter change: no recompile, the increment sees it
    eager, info_e = mala(eager, energy, 0.05, ge)
    comp, info_c = mala(comp, energy, 0.05, gc, compile=True)
    assert torch.equal(info_e.accepted, info_c.accepted)
    torch.testing.assert_close(comp.x, eager.x, rtol=1e-10, atol=1e-12)
    assert energy.net[0].weight.grad is None  # parameter gradients untouched


@needs_compile
def test_compiled_training_equals_eager():
    """PCD (the unweighted step: no increment) with compile=True follows the eager run."""
    rows = []
    for compile in (False, True):
        energy, g = mlp(), torch.Generator().manual_seed(0)
        data = torch.randn(128, 3, generator=g, dtype=D)
        phase = negative_phase("pcd", move=Move(step_size=0.05, compile=compile))
        opt = torch.optim.SGD(energy.parameters(), lr=0.05)
        trainer = Trainer(energy, data, opt, phase, n_walkers=64, generator=g, log_z0=0.0)
        trainer.run(4, progress=False)
        rows.append((trainer.history, trainer.walkers.x))
    (h_e, x_e), (h_c, x_c) = rows
    torch.testing.assert_close(x_c, x_e, rtol=1e-9, atol=1e-10)
    assert [r["loss"] for r in h_c] == pytest.approx([r["loss"] for r in h_e], rel=1e-9)


def test_compile_failure_is_a_clear_error():
    def broken(t):
        raise NotImplementedError("no compiler")

    with pytest.raises(RuntimeError, match="could not build the Langevin step"):
        run_compiled(broken, torch.ones(2))
