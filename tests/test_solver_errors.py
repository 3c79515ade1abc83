import math

import pytest
import torch

from pdekit import Grid
from pdekit.solvers import BlowUpError, Burgers, GaussianRandomField, Heat, NavierStokes2D


def test_non_positive_viscosity_names_the_value_and_member():
    with pytest.raises(ValueError, match=r"viscosity must be positive and finite; got -0\.1 \(member 1\)"):
        NavierStokes2D(Grid((8, 8)), torch.tensor([1e-3, -0.1]), device="cpu")
    with pytest.raises(ValueError, match="viscosity must be positive and finite; got 0"):
        Burgers(Grid((8,)), 0.0, device="cpu")
    with pytest.raises(ValueError, match="diffusivity must be positive and finite; got nan"):
        Heat(Grid((8,)), float("nan"), device="cpu")


def test_negative_diffusivity_field_names_the_point():
    field = torch.ones(1, 4, 4)
    field[0, 2, 3] = -1.0
    with pytest.raises(ValueError, match=r"got -1\.0 at member 0, point \(2, 3\)"):
        Heat(Grid((4, 4)), field, device="cpu")


def test_state_of_the_wrong_shape_dtype_or_batch_is_refused():
    solver = NavierStokes2D(Grid((8, 8)), torch.tensor([1e-3, 2e-3]), device="cpu")
    with pytest.raises(ValueError, match=r"expects \[batch, channel, \*space\] = \('batch', 1, 8, 8\)"):
        solver.step(torch.zeros(2, 1, 8, 16), 0.1)
    with pytest.raises(ValueError, match="3 members but the solver's per-member parameters have 2"):
        solver.step(torch.zeros(3, 1, 8, 8), 0.1)
    with pytest.raises(ValueError, match="dtype torch.float64"):
        solver.step(torch.zeros(2, 1, 8, 8, dtype=torch.float64), 0.1)


def test_mismatched_per_member_parameters_are_refused():
    with pytest.raises(ValueError, match="drag has 3 members but another parameter has 2"):
        NavierStokes2D(Grid((8, 8)), torch.tensor([1e-3, 2e-3]), drag=torch.tensor([0.1, 0.1, 0.1]), device="cpu")


def test_nan_in_the_initial_state_names_the_member():
    solver = Burgers(Grid((16,)), 0.01, device="cpu")
    u0 = solver.initial_condition(3, seeds=[0, 1, 2])
    u0[2, 0, 5] = math.nan
    with pytest.raises(BlowUpError, match=r"u0 holds NaN or infinity at t=0 in members \[2\]"):
        solver.solve(u0, [0.1], dt=0.01)


@pytest.mark.parametrize("t_out", [[], [0.2, 0.1], [-1.0], [float("inf")]])
def test_bad_output_times_are_refused(t_out):
    solver = Heat(Grid((8,)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="t_out"):
        solver.solve(solver.initial_condition(1, seeds=[0]), t_out, dt=0.1)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown time-stepping scheme 'rk3'"):
        Burgers(Grid((8,)), 0.1, scheme="rk3", device="cpu")
    with pytest.raises(ValueError, match="NavierStokes2D needs a 2D grid"):
        NavierStokes2D(Grid((8,)), device="cpu")
    with pytest.raises(ValueError, match="no exact integrator"):
        Heat(Grid((8,)), torch.ones(1, 8), scheme="exact", device="cpu")
    with pytest.raises(ValueError, match="tau must be positive"):
        GaussianRandomField(tau=0.0)
    with pytest.raises(TypeError, match="no advection"):
        Heat(Grid((8,)), 0.1, device="cpu").cfl_number(torch.zeros(1, 1, 8), 0.1)


@pytest.mark.parametrize("dt", [0.0, -1.0, math.nan, math.inf])
def test_step_refuses_a_non_positive_or_non_finite_dt(dt):
    solver = Burgers(Grid((16,)), 0.01, device="cpu")
    with pytest.raises(ValueError, match=f"dt must be positive and finite; got {dt}"):
        solver.step(solver.initial_condition(2, seeds=[0, 1]), dt)


def test_time_derivative_of_a_non_finite_state_names_the_member():
    solver = NavierStokes2D(Grid((8, 8)), 1e-3, device="cpu")
    u = solver.initial_condition(3, seeds=[0, 1, 2])
    u[1, 0, 2, 3] = math.inf
    with pytest.raises(BlowUpError, match=r"u holds NaN or infinity in members \[1\]") as error:
        solver.time_derivative(u)
    assert error.value.members == [1]


def test_step_spreads_a_nan_over_its_member_and_leaves_the_others_finite():
    # What step's docstring promises instead of a per-step check (which would cost a device sync).
    solver = Burgers(Grid((16,)), 0.01, device="cpu")
    u = solver.initial_condition(2, seeds=[0, 1])
    u[0, 0, 5] = math.nan
    after = solver.step(u, 0.01)
    assert torch.isnan(after[0]).all() and torch.isfinite(after[1]).all()
