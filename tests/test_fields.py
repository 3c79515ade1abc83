import math

import pytest
import torch

from pdekit import Grid
from pdekit.solvers import GaussianRandomField, NavierStokes2D, RandomFourierModes, fno_forcing


@pytest.mark.parametrize("sampler", [GaussianRandomField(), RandomFourierModes()])
def test_member_gets_the_same_field_in_any_batch_split(sampler):
    grid = Grid((16, 24))
    whole = sampler(grid, [10, 11, 12, 13], dtype=torch.float64)
    parts = torch.cat(
        [sampler(grid, [10, 11], dtype=torch.float64), sampler(grid, [12], dtype=torch.float64), sampler(grid, [13], dtype=torch.float64)]
    )
    assert whole.shape == (4, 1, 16, 24)
    assert torch.equal(whole, parts)
    assert not torch.equal(whole[0], whole[1])


def test_initial_condition_from_a_generator_is_reproducible():
    solver = NavierStokes2D(Grid((16, 16)), 1e-3, device="cpu")
    a = solver.initial_condition(3, torch.Generator().manual_seed(5))
    b = solver.initial_condition(3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="2 seeds for a batch of 3"):
        solver.initial_condition(3, seeds=[1, 2])


def test_gaussian_random_field_has_the_prescribed_spectrum_and_zero_mean():
    grid = Grid((16, 16))
    sampler = GaussianRandomField(alpha=2.5, tau=7.0)
    fields = sampler(grid, range(4000), dtype=torch.float64)
    assert fields.mean(dim=(-2, -1)).abs().max() < 1e-12
    # E|rfft(u)_k|^2 = n_points^2 * eigenvalue_k = n_points * amplitude_k^2 off the self-conjugate modes.
    power = torch.fft.rfft2(fields[:, 0]).abs().pow(2).mean(0)
    expected = math.prod(grid.shape) * sampler.amplitude(grid) ** 2
    mx = grid.mode_numbers()[1]
    modes = (expected > 0) & (mx > 0) & (mx < 8)
    relative = (power[modes] / expected[modes] - 1).abs()
    # 4000 samples of a complex Gaussian: each ratio has standard deviation 1/sqrt(4000) ~ 0.016.
    assert relative.max() < 0.08 and relative.mean() < 0.02


def test_gaussian_random_field_default_scale_is_the_fno_codes():
    grid = Grid((8, 8))
    amplitude = GaussianRandomField(alpha=2.5, tau=7.0).amplitude(grid)
    k2 = grid.wavenumber_squared()
    expected_variance = 2 * 7.0**3 * (k2 + 49.0) ** -2.5  # sigma^2 = 2 tau^(2 alpha - d)
    assert torch.allclose(amplitude.view(-1)[1:] ** 2 / 64, expected_variance.view(-1)[1:])


def test_gaussian_random_field_with_explicit_sigma_is_the_fno_burgers_generators_prior():
    # GRF1.m (the FNO's Burgers data): u = sum_k a_k cos(2 pi k x) + b_k sin(2 pi k x), with a_k, b_k independent
    # N(0, 2 sigma^2 ((2 pi k)^2 + tau^2)^-gamma); gamma 2.5, tau 7, sigma 7^2. Read a_k and b_k off the rfft and compare.
    n = 64
    fields = GaussianRandomField(alpha=2.5, tau=7.0, sigma=49.0)(Grid((n,)), range(4000), dtype=torch.float64)[:, 0]
    coefficients = torch.fft.rfft(fields)[:, 1:9] * 2 / n  # a_k - i b_k, k = 1 .. 8
    k = torch.arange(1, 9, dtype=torch.float64)
    expected = 2 * 49.0**2 * ((2 * math.pi * k) ** 2 + 49.0) ** -2.5  # k = 1: 0.0643 of the field's variance 0.074
    for part in (coefficients.real, coefficients.imag):
        # 4000 samples: each variance estimate has relative standard deviation sqrt(2 / 4000) ~ 0.022
        assert (part.pow(2).mean(0) / expected - 1).abs().max() < 0.1


def test_random_fourier_modes_are_band_limited_and_bounded():
    grid = Grid((32,))
    fields = RandomFourierModes(waves=3, max_mode=4, amplitude=0.5)(grid, range(20), dtype=torch.float64)
    spectrum = torch.fft.rfft(fields[:, 0]).abs()
    assert spectrum[:, 5:].max() < 1e-12 and spectrum[:, 0].max() < 1e-12
    assert fields.abs().max() <= 1.5


def test_fno_forcing_is_the_papers_formula():
    grid = Grid((8, 8))
    y, x = grid.mesh()
    expected = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    assert torch.allclose(fno_forcing(grid), expected)
