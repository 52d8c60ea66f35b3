"""Renamed public names keep working: each old name still gives the new object, with a DeprecationWarning that
names the new one (issue 26, item 6)."""

import importlib

import pytest
import torch

import ebmlab
from ebmlab.deprecation import resolve

RENAMED = [  # (module, old name, new dotted path)
    ("ebmlab", "SAMPLERS", "ebmlab.sampling.smc.KERNELS"),
    ("ebmlab.sampling.smc", "SAMPLERS", "ebmlab.sampling.smc.KERNELS"),
    ("ebmlab.sampling.smc", "get_sampler", "ebmlab.sampling.smc.get_kernel"),
    ("ebmlab.training.nce", "Noise", "ebmlab.estimators.noise.Proposal"),
    ("ebmlab.latent.prior_density", "grid_points", "ebmlab.latent.prior_density.cell_centres"),
]


@pytest.mark.parametrize("module, old, new", RENAMED)
def test_old_names_warn_and_give_the_new_object(module, old, new):
    mod = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        value = getattr(mod, old)
    assert value is resolve(new)


def test_from_import_of_an_old_name_works():
    with pytest.warns(DeprecationWarning, match="KERNELS"):
        from ebmlab.sampling.smc import SAMPLERS
    assert SAMPLERS is ebmlab.KERNELS


def test_the_old_latent_loop_module_warns_and_exports_the_trainer():
    import sys

    sys.modules.pop("ebmlab.latent.loop", None)
    with pytest.warns(DeprecationWarning, match=r"ebmlab\.latent\.trainer"):
        loop = importlib.import_module("ebmlab.latent.loop")
    from ebmlab.latent.trainer import LatentTrainer, LoopConfig

    assert loop.LatentTrainer is LatentTrainer and loop.LoopConfig is LoopConfig


def test_moved_names_stay_where_they_were_exported():
    """DivergenceError and the divergence checks moved to ebmlab.errors; their old homes re-export them."""
    from ebmlab import errors, training
    from ebmlab.training import validation

    assert ebmlab.DivergenceError is training.DivergenceError is validation.DivergenceError is errors.DivergenceError
    assert validation.check_int is errors.check_int and validation.check_worst is errors.check_worst


def test_unknown_names_still_raise_attribute_error():
    from ebmlab.sampling import smc

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        smc.nope  # noqa: B018
    with pytest.raises(AttributeError):
        ebmlab.nope  # noqa: B018


def test_ais_old_move_keywords_warn_and_give_the_same_estimate():
    """ais(kernel=, step_size=, n_moves=) is ais(move=Move(kernel, step_size, n_steps=n_moves)), with a warning."""
    from ebmlab.energies import Gaussian
    from ebmlab.estimators import ais
    from ebmlab.sampling.kernels import Move

    u0 = Gaussian(torch.zeros(2, dtype=torch.float64))
    u1 = Gaussian(torch.ones(2, dtype=torch.float64), torch.full((2,), 0.7, dtype=torch.float64))
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match=r"ais\(step_size=, n_moves=\) is deprecated"):
        old = ais(u0, u1, x, 0.0, 5, step_size=0.2, n_moves=2, generator=torch.Generator().manual_seed(1))
    new = ais(u0, u1, x, 0.0, 5, move=Move("mala", 0.2, n_steps=2), generator=torch.Generator().manual_seed(1))
    assert old.log_z == new.log_z and old.se == new.se and old.method == new.method == "ais-mala"


def test_tempering_pilot_moves_is_pilot_steps():
    from ebmlab.sampling.tempering import Tempering

    with pytest.warns(
        DeprecationWarning, match=r"Tempering\(pilot_moves=\) is deprecated: use Tempering\(pilot_steps=\)"
    ):
        assert Tempering(pilot_moves=3) == Tempering(pilot_steps=3)
    with pytest.raises(TypeError, match="not both"), pytest.warns(DeprecationWarning):
        Tempering(pilot_steps=2, pilot_moves=3)
