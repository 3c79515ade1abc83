"""CPU and CUDA agree. Skipped where there is no CUDA device (CI); run on a GPU machine."""

import pytest
import torch

from pdekit import Grid
from pdekit.solvers import Burgers, Heat, NavierStokes2D, fno_forcing

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _build(device):
    grid2d = Grid((64, 48))
    return [
        NavierStokes2D(grid2d, torch.tensor([1e-3, 5e-3]), forcing=fno_forcing(grid2d), cfl=0.5, device=device, dtype=torch.float64),
        Heat(grid2d, 1 + 0.5 * torch.rand(1, *grid2d.shape, generator=torch.Generator().manual_seed(0)), device=device, dtype=torch.float64),
        Burgers(Grid((256,)), 0.01, device=device, dtype=torch.float64),
    ]


def test_solvers_give_the_same_trajectories_on_cpu_and_cuda():
    for cpu, cuda in zip(_build("cpu"), _build("cuda")):
        u0 = cpu.initial_condition(2, seeds=[3, 4])
        assert torch.equal(u0, cuda.initial_condition(2, seeds=[3, 4]).cpu())
        expected = cpu.solve(u0, [0.5, 1.0], dt=0.01)
        actual = cuda.solve(u0.cuda(), [0.5, 1.0], dt=0.01).cpu()
        assert torch.allclose(actual, expected, rtol=0, atol=1e-10 * expected.abs().max())


def test_float32_on_cuda_tracks_float64_on_cpu():
    grid = Grid((64, 64))
    reference = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), device="cpu", dtype=torch.float64)
    fast = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), device="cuda", dtype=torch.float32)
    w0 = reference.initial_condition(4, seeds=range(4))
    expected = reference.solve(w0, [1.0, 5.0], dt=1e-2)
    actual = fast.solve(w0.float().cuda(), [1.0, 5.0], dt=1e-2).double().cpu()
    assert (actual - expected).abs().max() < 1e-4 * expected.abs().max()
