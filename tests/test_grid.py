import dataclasses
import math
import pickle

import pytest
import torch

from pdekit import Grid
from pdekit.grid import fourier_truncate


def test_coordinates_and_spacing_follow_lengths_per_axis():
    grid = Grid((6, 8), lengths=(3.0, 2.0))
    y, x = grid.coordinates()
    assert grid.spacing == (0.5, 0.25)
    assert torch.allclose(y, torch.arange(6, dtype=torch.float64) * 0.5)
    assert torch.allclose(x, torch.arange(8, dtype=torch.float64) * 0.25)
    assert grid.mesh()[0].shape == (6, 8)


def test_wavenumbers_differentiate_a_plane_wave_exactly_on_a_non_square_grid():
    grid = Grid((12, 20), lengths=(2.0, 3.0))
    y, x = grid.mesh()
    u = torch.sin(2 * math.pi * 2 * y / 2.0) * torch.cos(2 * math.pi * 3 * x / 3.0)
    ky, kx = grid.derivative_wavenumbers()
    du_dx = torch.fft.irfftn(1j * kx * torch.fft.rfftn(u), s=grid.shape)
    expected = -torch.sin(2 * math.pi * 2 * y / 2.0) * 2 * math.pi * torch.sin(2 * math.pi * 3 * x / 3.0)
    assert torch.allclose(du_dx, expected, atol=1e-12)
    assert grid.wavenumber_squared().shape == grid.spectral_shape == (12, 11)


def test_dealias_mask_keeps_exactly_the_modes_below_a_third_of_n():
    grid = Grid((9, 64))
    mask = grid.dealias_mask()
    my, mx = grid.mode_numbers()
    assert mask.shape == grid.spectral_shape
    # n = 9 keeps |m| <= 2, n = 64 keeps |m| <= 21.
    assert mask.sum().item() == 5 * 22
    assert torch.equal(mask.bool(), (my.abs() <= 2) & (mx <= 21))


def test_derivative_wavenumbers_zero_the_nyquist_mode_of_even_axes():
    (k,) = Grid((8,)).derivative_wavenumbers()
    assert k[-1] == 0 and k[3] == 2 * math.pi * 3
    (k_odd,) = Grid((7,)).derivative_wavenumbers()
    assert k_odd[-1] == 2 * math.pi * 3


@pytest.mark.parametrize("shape, lengths", [((0, 4), None), ((4,), (0.0,)), ((4, 4), (1.0,)), ((2, 2, 2, 2), None)])
def test_bad_grid_raises_naming_the_value(shape, lengths):
    with pytest.raises(ValueError, match="Grid"):
        Grid(shape, lengths)


def test_fourier_truncate_keeps_resolved_modes_and_drops_the_rest():
    fine = Grid((64, 48))
    y, x = fine.mesh()
    resolved = torch.sin(2 * math.pi * 3 * x) * torch.cos(2 * math.pi * 5 * y)
    u = (resolved + torch.sin(2 * math.pi * 20 * x))[None, None]
    coarse = Grid((16, 12))
    yc, xc = coarse.mesh()
    expected = torch.sin(2 * math.pi * 3 * xc) * torch.cos(2 * math.pi * 5 * yc)
    assert torch.allclose(fourier_truncate(u, coarse.shape)[0, 0], expected, atol=1e-13)
    with pytest.raises(ValueError, match="refines nothing"):
        fourier_truncate(u, (128, 48))


def test_grid_normalises_its_arguments_to_tuples_and_compares_by_value():
    grid = Grid([8, 4], [1, 2])
    assert grid.shape == (8, 4) and grid.lengths == (1.0, 2.0)
    assert Grid((5,)).lengths == (1.0,)
    assert grid == Grid((8, 4), (1.0, 2.0)) and hash(grid) == hash(Grid((8, 4), (1.0, 2.0)))
    assert pickle.loads(pickle.dumps(grid)) == grid
    assert dataclasses.replace(grid, shape=(4, 4)) == Grid((4, 4), (1.0, 2.0))


def test_wavenumber_squared_is_the_sum_of_the_squared_wavenumbers_of_every_axis():
    grid = Grid((6, 5, 8), lengths=(1.0, 2.0, 3.0))
    kz, ky, kx = grid.wavenumbers()
    assert torch.equal(grid.wavenumber_squared(), kz**2 + ky**2 + kx**2)
    assert Grid((8,)).wavenumber_squared().shape == (5,)
