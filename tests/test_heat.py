import math
from itertools import pairwise

import pytest
import torch

from pdekit import Grid
from pdekit.solvers import Heat, RandomFourierModes

F64 = dict(dtype=torch.float64, device="cpu")


def _mode_amplitudes(u: torch.Tensor, grid: Grid) -> torch.Tensor:
    return torch.fft.rfftn(u, dim=grid.dims).abs()


@pytest.mark.parametrize("shape, lengths", [((64,), (2.0,)), ((24, 40), (1.0, 3.0)), ((8, 12, 10), (1.0, 2.0, 1.5))])
def test_heat_mode_decays_at_analytic_rate(shape, lengths):
    grid = Grid(shape, lengths)
    diffusivity = torch.tensor([0.01, 0.05])
    solver = Heat(grid, diffusivity, **F64)
    u0 = solver.initial_condition(2, seeds=[4, 5])
    times = [0.0, 0.3, 1.7]
    trajectory = solver.solve(u0, times, dt=0.1)

    k2 = grid.wavenumber_squared()
    initial = _mode_amplitudes(u0, grid)
    for i, t in enumerate(times):
        expected = initial * torch.exp(-diffusivity.view(2, 1, *[1] * grid.ndim) * k2 * t)
        actual = _mode_amplitudes(trajectory[:, i], grid)
        # Relative error on the modes well above round-off, absolute error on all of them.
        kept = expected > 1e-3 * initial.max()
        assert ((actual - expected).abs() / expected)[kept].max() < 1e-12
        assert (actual - expected).abs().max() < 1e-14 * initial.max()


def test_heat_step_composes_to_solve_exactly():
    solver = Heat(Grid((16, 20)), 0.02, **F64)
    u = u0 = solver.initial_condition(3, seeds=[0, 1, 2])
    for _ in range(7):
        u = solver.step(u, 0.05)
    assert torch.allclose(u, solver.solve(u0, [0.35], dt=1.0)[:, 0], rtol=0, atol=1e-13)


def test_heat_time_derivative_is_diffusivity_times_laplacian():
    grid = Grid((32, 16), lengths=(2.0, 1.0))
    y, x = grid.mesh()
    u = (torch.sin(math.pi * y) * torch.cos(4 * math.pi * x))[None, None]
    solver = Heat(grid, 0.3, **F64)
    expected = -0.3 * (math.pi**2 + 16 * math.pi**2) * u
    assert torch.allclose(solver.time_derivative(u), expected, atol=1e-11)


def _variable_diffusivity(grid: Grid) -> torch.Tensor:
    (x,) = grid.coordinates()
    return (0.02 * (1 + 0.5 * torch.sin(2 * math.pi * x)))[None]


def test_variable_diffusivity_time_derivative_is_the_divergence_form():
    grid = Grid((64,))
    (x,) = grid.coordinates()
    kappa = (1 + 0.5 * torch.sin(2 * math.pi * x))[None]
    solver = Heat(grid, kappa, **F64)
    u = torch.cos(2 * math.pi * x)[None, None]
    # d/dx[(1 + sin(2 pi x) / 2) * (-2 pi sin(2 pi x))]
    expected = -4 * math.pi**2 * torch.cos(2 * math.pi * x) - 2 * math.pi**2 * torch.sin(4 * math.pi * x)
    assert torch.allclose(solver.time_derivative(u)[0, 0], expected, atol=1e-10)


def test_variable_diffusivity_converges_at_the_order_of_its_scheme():
    # ETDRK4 reaches its order once the explicit remainder is resolved: (kappa_max - kappa_min)
    # |k|^2 dt < 1 on the modes that hold energy, hence smooth data and dt from 1/80 down.
    grid = Grid((64,))
    solver = Heat(grid, _variable_diffusivity(grid), initial_field=RandomFourierModes(waves=3, max_mode=3), **F64)
    u0 = solver.initial_condition(1, seeds=[7])
    reference = solver.solve(u0, [0.2], dt=0.2 / 2048)
    errors = [(solver.solve(u0, [0.2], dt=0.2 / n) - reference).abs().max().item() for n in (16, 32, 64)]
    orders = [math.log2(a / b) for a, b in pairwise(errors)]
    assert solver.scheme.order == 4
    assert all(abs(p - solver.scheme.order) < 0.4 for p in orders), (errors, orders)


def test_variable_diffusivity_conserves_the_mean_and_stays_stable_at_large_steps():
    grid = Grid((48, 32))
    y, x = grid.mesh()
    kappa = (0.05 * (1.2 + torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y)))[None]
    solver = Heat(grid, kappa, **F64)
    u0 = solver.initial_condition(2, seeds=[1, 2]) + 3.0
    # kappa_max |k|^2_max dt is about 3e2 here: far beyond any explicit scheme's limit.
    trajectory = solver.solve(u0, [0.5, 1.0, 2.0], dt=0.25)
    assert torch.allclose(trajectory.mean(dim=(-2, -1)), u0.mean(dim=(-2, -1)).unsqueeze(1), atol=1e-12)
    spread = (trajectory - 3.0).abs().flatten(2).amax(-1)
    assert (spread[:, 1:] <= spread[:, :-1]).all() and (spread[:, 0] < (u0 - 3.0).abs().flatten(1).amax(-1)).all()


def test_constant_field_diffusivity_matches_the_exact_solver():
    grid = Grid((16, 24))
    exact = Heat(grid, 0.03, **F64)
    field = Heat(grid, torch.full((1, *grid.shape), 0.03, dtype=torch.float64), **F64)
    u0 = exact.initial_condition(2, seeds=[1, 2])
    assert torch.allclose(field.solve(u0, [0.4], dt=0.1), exact.solve(u0, [0.4], dt=0.1), atol=1e-13)
