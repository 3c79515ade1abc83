import math

import torch
from scipy.special import ive

from pdekit import Grid
from pdekit.solvers import Burgers

F64 = dict(dtype=torch.float64, device="cpu")


def cole_hopf_solution(x: torch.Tensor, t: float, amplitude: float, viscosity: float) -> torch.Tensor:
    """Returns the exact solution of Burgers on [0, 1) from ``u0 = amplitude * sin(2 pi x)``.

    Cole-Hopf: ``u = -2 nu phi_x / phi`` with ``phi`` solving the heat equation from
    ``phi0 = exp(-c (1 - cos 2 pi x))``, ``c = amplitude / (4 pi nu)``, whose Fourier series has the
    modified Bessel coefficients ``exp(-c) I_n(c)``.
    """
    c = amplitude / (4 * math.pi * viscosity)
    phi = torch.full_like(x, ive(0, c))
    phi_x = torch.zeros_like(x)
    for n in range(1, 60):
        weight = 2 * ive(n, c) * math.exp(-viscosity * (2 * math.pi * n) ** 2 * t)
        phi += weight * torch.cos(2 * math.pi * n * x)
        phi_x -= weight * 2 * math.pi * n * torch.sin(2 * math.pi * n * x)
    return -2 * viscosity * phi_x / phi


def test_burgers_matches_the_cole_hopf_solution():
    grid = Grid((256,))
    (x,) = grid.coordinates()
    viscosity = torch.tensor([0.05, 0.02])
    solver = Burgers(grid, viscosity, **F64)
    u0 = torch.sin(2 * math.pi * x).expand(2, 1, -1).contiguous()
    times = [0.1, 0.3]
    trajectory = solver.solve(u0, times, dt=1e-3)
    for member, nu in enumerate(viscosity.tolist()):
        for i, t in enumerate(times):
            exact = cole_hopf_solution(x, t, 1.0, nu)
            assert (trajectory[member, i, 0] - exact).abs().max() < 1e-9


def test_burgers_conserves_the_mean_and_decays_energy():
    solver = Burgers(Grid((128,)), 0.01, **F64)
    u0 = solver.initial_condition(3, seeds=[0, 1, 2]) + 0.5
    trajectory = solver.solve(u0, torch.linspace(0.1, 1.0, 10), dt=1e-3)
    assert torch.allclose(trajectory.mean(-1), u0.mean(-1).unsqueeze(1).expand(-1, 10, -1), atol=1e-13)
    energy = (trajectory - 0.5).pow(2).mean(-1).squeeze(-1)
    assert (energy[:, 1:] < energy[:, :-1]).all()


def test_burgers_on_a_longer_period_is_the_unit_period_solution_rescaled():
    # u(x, t) on period L with viscosity nu is v(x / L, t / L) with v on period 1 at nu / L (x -> L x, t -> L t leaves
    # u_t + u u_x = nu u_xx with nu / L): the same values on a 2 pi grid are the unit-period solution at t / (2 pi).
    period, viscosity = 2 * math.pi, 0.1
    u0 = Burgers(Grid((128,)), viscosity, **F64).initial_condition(2, seeds=[0, 1])
    long = Burgers(Grid((128,), (period,)), viscosity, **F64).solve(u0, [1.0], dt=1e-3)
    unit = Burgers(Grid((128,)), viscosity / period, **F64).solve(u0, [1.0 / period], dt=1e-3 / period)
    assert (long - unit).abs().max() < 1e-10 * u0.abs().max()
