"""The learned correction's objective read from a store."""

import pytest
import torch
from torch import nn

from pdekit.data import Recipe, generate
from pdekit.rollout.correction import CorrectedSolver, CorrectionObjective, CorrectionTraining
from pdekit.runs import ExperimentConfig
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


def test_solver_dt_and_scale_not_set_are_none_meaning_the_recipes_step_and_an_earlier_files_zeros_read_as_none(tmp_path):
    assert (CorrectionTraining().solver_dt, CorrectionTraining().scale) == (None, None)
    earlier = ExperimentConfig.from_dict({"correction": {"solver_dt": 0.0, "scale": 0.0}}).correction
    assert earlier == CorrectionTraining()
    store = str(tmp_path / "burgers.zarr")
    generate(tiny_burgers(), store, progress=False)
    unset = CorrectionObjective.from_store(store, earlier, statistics=None, device="cpu").corrected_solver(nn.Identity())
    assert unset.solver_dt == pytest.approx(1e-2) and unset.scale == 1.0  # the recipe's dt; an unresolved scale leaves the output as is
    given = CorrectionTraining(solver_dt=0.025, scale=0.5)
    solver = CorrectionObjective.from_store(store, given, statistics=None, device="cpu").corrected_solver(nn.Identity())
    assert (solver.solver_dt, solver.scale) == (0.025, 0.5)
    with pytest.raises(ValueError, match=r"^correction.solver_dt must be positive and finite \(or left out: from the data\); got -0.01$"):
        CorrectionTraining(solver_dt=-0.01)
    with pytest.raises(ValueError, match=r"^solver_dt must be positive and finite"):
        CorrectedSolver(unset.solvers, nn.Identity(), dt=0.05, solver_dt=0.0)


class Constant(nn.Module):
    """A network whose output is ``value`` everywhere: ``[B, C, *S]`` like its input."""

    def __init__(self, value: float):
        super().__init__()
        self.value = value
        self.weight = nn.Parameter(torch.zeros(()))  # a parameter gives the solver the network's dtype

    def forward(self, z, params=None):
        return torch.full_like(z, self.value) + 0 * self.weight


def test_a_step_is_the_coarse_step_plus_scale_times_std_times_the_network_output(tmp_path):
    from pdekit.data.normalize import FieldStatistics

    store = str(tmp_path / "burgers.zarr")
    generate(tiny_burgers(), store, progress=False)
    objective = CorrectionObjective.from_store(store, CorrectionTraining(scale=0.5), statistics=None, device="cpu")
    statistics = FieldStatistics((0.3,), (2.0,), space_dims=1)
    u = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64).sin().view(1, 1, 8)
    for value, expected_shift in ((0.0, 0.0), (0.25, 0.5 * 2.0 * 0.25)):  # v + scale * std * N(z)
        corrected = CorrectedSolver(objective.solvers, Constant(value).double(), dt=objective.dt, statistics=statistics, scale=0.5)
        coarse = corrected.coarse_step(u)
        torch.testing.assert_close(corrected.step(u, objective.dt), coarse + expected_shift, rtol=0, atol=1e-12)
