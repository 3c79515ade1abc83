"""The learned correction's objective read from a store."""

import pytest
import torch

from pdekit.data import Recipe, generate
from pdekit.rollout.correction import CorrectionObjective
from pdekit.solvers import GaussianRandomField


def tiny_burgers(members: int = 2) -> Recipe:
    return Recipe(
        name="burgers_tiny",
        pde="burgers",
        shape=(16,),
        stored_shape=(8,),
        times=(0.05, 0.1, 0.15),
        dt=1e-2,
        cfl=0.5,
        parameters={"viscosity": 0.05},
        initial_field=GaussianRandomField(alpha=2.0, tau=5.0),
        members=members,
        batch_size=members,
    )


def test_objective_from_a_store_steps_its_time_interval_with_its_recipe_on_the_stored_grid(tmp_path):
    store = str(tmp_path / "burgers.zarr")
    generate(tiny_burgers(), store, progress=False)
    objective = CorrectionObjective.from_store(store, statistics=None, device="cpu")
    assert objective.dt == pytest.approx(0.05)
    assert objective.solvers.grid.shape == (8,) and objective.solvers.device == torch.device("cpu")
