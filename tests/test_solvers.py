import math

import pytest
import torch

from pdekit import Grid
from pdekit.solvers import BlowUpError, Burgers, NavierStokes2D
from pdekit.solvers.time_stepping import SCHEMES, make_scheme

F64 = dict(dtype=torch.float64, device="cpu")


def test_on_output_is_called_once_per_output_time_in_order():
    solver = Burgers(Grid((32,)), 0.05, **F64)
    u0 = solver.initial_condition(2, seeds=[0, 1])
    times = [0.0, 0.1, 0.1, 0.25, 0.4]
    reported: list[float] = []
    trajectory = solver.solve(u0, torch.tensor(times, dtype=torch.float64), 0.01, on_output=reported.append)
    assert reported == times
    assert torch.equal(trajectory, solver.solve(u0, times, 0.01))


def test_on_output_is_not_called_for_the_interval_that_blew_up():
    grid = Grid((32, 32))
    w0 = 20 * NavierStokes2D(grid, 1e-3, **F64).initial_condition(1, seeds=[0])
    reported: list[float] = []
    with pytest.raises(BlowUpError) as error:
        NavierStokes2D(grid, 1e-3, **F64).solve(w0, torch.arange(1.0, 30.0).tolist(), dt=1.0, on_output=reported.append)
    assert reported == [float(t) for t in range(1, int(error.value.time))]


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_every_scheme_is_found_by_its_name_and_declares_its_order(name):
    scheme = make_scheme(name)
    assert scheme.name == name and make_scheme(scheme) is scheme
    # The orders of their papers: the convergence tests measure each solver against the order declared here.
    assert scheme.order == {"exact": math.inf, "etdrk4": 4, "cn-heun": 2, "cn-euler": 1}[name]
