import math
from itertools import pairwise

import pytest
import torch

from pdekit import Grid
from pdekit.solvers import BlowUpError, NavierStokes2D, fno_forcing, kolmogorov_forcing
from pdekit.solvers.time_stepping import SCHEMES

F64 = dict(dtype=torch.float64, device="cpu")
TORUS = (2 * math.pi, 2 * math.pi)


def _taylor_green(grid: Grid, k: int = 1) -> torch.Tensor:
    y, x = grid.mesh()
    return (2 * k * torch.cos(k * x) * torch.cos(k * y))[None, None]


def _enstrophy(w: torch.Tensor) -> torch.Tensor:
    return 0.5 * (w**2).flatten(-3).mean(-1)


@pytest.mark.parametrize("drag", [0.0, 0.3])
def test_taylor_green_vortex_decays_at_its_exact_rate(drag):
    grid = Grid((32, 48), TORUS)
    viscosity, k = 0.05, 2
    solver = NavierStokes2D(grid, viscosity, drag=drag, **F64)
    w0 = _taylor_green(grid, k)
    times = [0.25, 1.0, 2.0]
    trajectory = solver.solve(w0, times, dt=0.1)
    for i, t in enumerate(times):
        expected = w0 * math.exp(-(2 * viscosity * k**2 + drag) * t)
        assert (trajectory[:, i] - expected).abs().max() < 1e-12 * w0.abs().max()


def test_velocity_of_taylor_green_vortex_is_the_analytic_one():
    grid = Grid((24, 24), TORUS)
    y, x = grid.mesh()
    velocity = NavierStokes2D(grid, 0.1, **F64).velocity(_taylor_green(grid))
    assert torch.allclose(velocity[0, 0], -torch.cos(x) * torch.sin(y), atol=1e-13)
    assert torch.allclose(velocity[0, 1], torch.sin(x) * torch.cos(y), atol=1e-13)


def test_velocity_is_divergence_free_and_its_curl_is_the_vorticity():
    # Odd point counts have no Nyquist mode, so the velocity represents every mode of w.
    grid = Grid((47, 33), (1.0, 2.0))
    solver = NavierStokes2D(grid, 1e-3, **F64)
    w = solver.initial_condition(3, seeds=[0, 1, 2])
    velocity = solver.velocity(w)
    spectrum = torch.fft.rfft2(velocity)
    ky, kx = grid.derivative_wavenumbers()
    divergence = torch.fft.irfft2(1j * kx * spectrum[:, 0] + 1j * ky * spectrum[:, 1], s=grid.shape)
    curl = torch.fft.irfft2(1j * kx * spectrum[:, 1] - 1j * ky * spectrum[:, 0], s=grid.shape)
    scale = velocity.abs().max() * 2 * math.pi * max(grid.shape)
    assert divergence.abs().max() < 1e-14 * scale
    assert torch.allclose(curl, w[:, 0], atol=1e-12)


def test_unforced_enstrophy_never_increases():
    grid = Grid((64, 64))
    solver = NavierStokes2D(grid, 1e-4, cfl=0.5, **F64)
    w0 = 20 * solver.initial_condition(2, seeds=[3, 4])  # vigorous flow: a strong forward cascade
    enstrophy = _enstrophy(solver.solve(w0, torch.linspace(0, 2, 41), dt=0.05))
    assert (enstrophy[:, 1:] <= enstrophy[:, :-1] * (1 + 1e-12)).all()
    assert (enstrophy[:, -1] < 0.99 * enstrophy[:, 0]).all()


def test_nonlinear_term_conserves_energy_and_enstrophy():
    # The dealiased advection term is an exact Galerkin truncation: <w, N(w)> = <psi, N(w)> = 0.
    grid = Grid((32, 40))
    solver = NavierStokes2D(grid, 1e-3, **F64)
    w_hat = torch.fft.rfft2(solver.initial_condition(2, seeds=[5, 6])) * grid.dealias_mask()
    n_hat = solver.nonlinear_term(w_hat)
    w, n = torch.fft.irfft2(w_hat, s=grid.shape), torch.fft.irfft2(n_hat, s=grid.shape)
    psi = solver.streamfunction(w)
    scale = w.abs().max() * n.abs().max()
    assert (w * n).flatten(1).mean(1).abs().max() < 1e-14 * scale
    assert (psi * n).flatten(1).mean(1).abs().max() < 1e-14 * scale * psi.abs().max() / w.abs().max()


@pytest.mark.parametrize("scheme", [name for name, scheme in SCHEMES.items() if not scheme.exact])
def test_temporal_convergence_order_matches_the_scheme(scheme):
    grid = Grid((32, 32))
    solver = NavierStokes2D(grid, 1e-2, forcing=fno_forcing(grid), scheme=scheme, **F64)
    order = solver.scheme.order
    w0 = 10 * solver.initial_condition(2, seeds=[3, 4])
    reference = NavierStokes2D(grid, 1e-2, forcing=fno_forcing(grid), **F64).solve(w0, [0.5], dt=0.5 / 1024)
    # A first-order scheme's error shrinks slowly: smaller steps to be in its asymptotic range.
    steps = (16, 32, 64) if order > 1 else (64, 128, 256)
    errors = [(solver.solve(w0, [0.5], dt=0.5 / n) - reference).abs().max().item() for n in steps]
    orders = [math.log2(a / b) for a, b in pairwise(errors)]
    assert all(abs(p - order) < 0.25 for p in orders), (errors, orders)


def test_time_derivative_is_the_right_hand_side_the_scheme_integrates():
    grid = Grid((32, 32))
    solver = NavierStokes2D(grid, 1e-2, forcing=fno_forcing(grid), drag=0.1, **F64)
    w = solver.initial_condition(2, seeds=[8, 9])
    h = 1e-6
    one_sided = (4 * solver.step(w, h) - solver.step(w, 2 * h) - 3 * w) / (2 * h)  # second order, forward steps only
    derivative = solver.time_derivative(w)
    assert (one_sided - derivative).abs().max() < 1e-7 * derivative.abs().max()


def test_per_member_parameters_equal_separate_runs():
    grid = Grid((32, 32))
    forcing = fno_forcing(grid)
    viscosity, amplitude = torch.tensor([1e-3, 1e-2]), torch.tensor([1.0, 0.5])
    batched = NavierStokes2D(grid, viscosity, forcing=forcing, forcing_amplitude=amplitude, **F64)
    w0 = batched.initial_condition(2, seeds=[1, 2])
    together = batched.solve(w0, [0.5, 1.0], dt=0.05)
    for i in range(2):
        alone = NavierStokes2D(grid, viscosity[i].item(), forcing=forcing, forcing_amplitude=amplitude[i].item(), **F64)
        assert torch.allclose(together[i : i + 1], alone.solve(w0[i : i + 1], [0.5, 1.0], dt=0.05), atol=1e-13)


def test_fno_forced_flow_is_statistically_stationary():
    grid = Grid((64, 64))
    solver = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), cfl=0.8, dtype=torch.float32, device="cpu")
    w0 = solver.initial_condition(4, seeds=[0, 1, 2, 3])
    enstrophy = _enstrophy(solver.solve(w0, torch.arange(0.0, 81.0), dt=0.05)).mean(0)
    first, second = enstrophy[30:55].mean(), enstrophy[55:80].mean()
    assert abs(first - second) < 0.15 * second
    assert first > 2 * enstrophy[0]  # the forcing has pumped the flow up from its initial state


def test_kolmogorov_forcing_is_the_curl_of_a_sinusoidal_body_force():
    grid = Grid((32, 16), TORUS)
    y, _ = grid.mesh()
    body_force_x = 2.0 * torch.sin(4 * y)
    ky, _ = grid.derivative_wavenumbers()
    curl = -torch.fft.irfft2(1j * ky * torch.fft.rfft2(body_force_x), s=grid.shape)
    assert torch.allclose(kolmogorov_forcing(grid, wavenumber=4, amplitude=2.0), curl, atol=1e-12)


def test_cfl_control_keeps_a_too_large_step_stable_and_accurate():
    grid = Grid((32, 32))
    w0 = 20 * NavierStokes2D(grid, 1e-3, **F64).initial_condition(1, seeds=[0])
    with pytest.raises(BlowUpError, match=r"CFL number was 48\.4 at t=0") as error:
        NavierStokes2D(grid, 1e-3, **F64).solve(w0, torch.arange(1.0, 30.0), dt=1.0)
    assert error.value.members == [0]
    adaptive = NavierStokes2D(grid, 1e-3, cfl=0.5, **F64).solve(w0, [1.0, 2.0], dt=1.0)
    reference = NavierStokes2D(grid, 1e-3, **F64).solve(w0, [1.0, 2.0], dt=1e-3)
    assert (adaptive - reference).abs().max() < 1e-3 * reference.abs().max()
