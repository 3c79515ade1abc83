"""Random initial fields and deterministic forcings on a periodic grid.

Random fields are drawn member by member from a seed each: member ``i`` gets the same field
whether it is drawn alone or inside any batch, on any device. The noise is drawn on the CPU in
float64 and only then moved, so a CUDA run reproduces a CPU run's initial conditions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from pdekit.devices import Device
from pdekit.grid import Grid


class StateSampler(Protocol):
    """What a solver draws its initial states from: one state ``[channel, *grid.shape]`` per seed."""

    def __call__(
        self, grid: Grid, seeds: Sequence[int], dtype: torch.dtype = torch.float32, device: Device | None = None
    ) -> torch.Tensor: ...


def member_generator(seed: int) -> torch.Generator:
    """Returns a CPU generator seeded with ``seed``: the random stream of one ensemble member."""
    return torch.Generator(device="cpu").manual_seed(int(seed))


def draw_seeds(batch: int, generator: torch.Generator | None = None) -> list[int]:
    """Returns ``batch`` member seeds drawn from ``generator`` (the global one if None)."""
    return torch.randint(0, 2**62, (batch,), generator=generator).tolist()


@dataclass(frozen=True)
class GaussianRandomField:
    """A zero-mean Gaussian random field with covariance ``sigma^2 (-laplacian + tau^2)^(-alpha)``.

    The Matérn-type prior of the FNO paper (Li et al., ICLR 2021): ``alpha=2.5, tau=7`` for the
    Navier-Stokes vorticity, ``alpha=2, tau=5, sigma=25`` for Burgers. Larger ``alpha`` gives
    smoother fields, ``tau`` sets the inverse correlation length. The field is the covariance's
    Karhunen-Loeve expansion: with an explicit ``sigma``, the variance of the cosine and sine
    coefficients of mode k is ``2 sigma^2 (|2 pi k|^2 + tau^2)^(-alpha)``, as in the FNO's MATLAB
    generator of its Burgers data (``GRF1``, sigma = tau^2 there). With ``sigma=None`` the scale is
    ``sqrt(2) * tau^(alpha - d/2)``, the normalisation of the FNO's Python generator (its
    Navier-Stokes datasets use it; it has twice the variance of the expansion with
    ``sigma = tau^(alpha - d/2)``, and the paper's text states yet another constant). The mean mode is
    zero.

    Args:
        alpha: the smoothness exponent.
        tau: the inverse correlation length, positive.
        sigma: the scale, positive; None for the FNO code's ``sqrt(2) * tau^(alpha - d/2)``.

    Raises:
        ValueError: ``tau`` or ``sigma`` is not positive.
    """

    alpha: float = 2.5
    tau: float = 7.0
    sigma: float | None = None

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise ValueError(f"GaussianRandomField tau must be positive; got {self.tau}")
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"GaussianRandomField sigma must be positive; got {self.sigma}")

    def amplitude(self, grid: Grid) -> torch.Tensor:
        """Returns the spectral filter ``sqrt(n_points * eigenvalue)`` applied to white noise's rfft.

        Args:
            grid: the periodic grid.

        Returns:
            ``[*grid.spectral_shape]`` float64, zero at the mean mode.
        """
        sigma = self.sigma if self.sigma is not None else math.sqrt(2) * self.tau ** (self.alpha - grid.ndim / 2)
        k2 = grid.wavenumber_squared(torch.float64)
        n_points = math.prod(grid.shape)
        amplitude = sigma * torch.sqrt(n_points * (k2 + self.tau**2) ** (-self.alpha))
        amplitude.view(-1)[0] = 0.0
        return amplitude

    def __call__(self, grid: Grid, seeds: Sequence[int], dtype: torch.dtype = torch.float32, device: Device | None = None) -> torch.Tensor:
        """Returns one field per seed: ``[len(seeds), 1, *grid.shape]``.

        Args:
            grid: the periodic grid.
            seeds: one seed per field; a field depends on its seed only.
            dtype: the fields' dtype (they are drawn in float64 and then cast).
            device: where the fields are put; None is torch's default device.

        Returns:
            ``[len(seeds), 1, *grid.shape]``.
        """
        amplitude = self.amplitude(grid)
        dims = tuple(range(-grid.ndim, 0))
        # One transform per member: a batched FFT's rounding depends on the batch size on some
        # CPUs (MKL with AVX-512), which would make a member's field depend on its batch-mates.
        fields = [
            torch.fft.irfftn(
                torch.fft.rfftn(torch.randn(grid.shape, generator=member_generator(s), dtype=torch.float64), dim=dims) * amplitude,
                s=grid.shape,
                dim=dims,
            )
            for s in seeds
        ]
        return torch.stack(fields).unsqueeze(1).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class RandomFourierModes:
    """A sum of ``waves`` sine waves ``A sin(k . x + phi)`` with random integer modes.

    Each wave's mode numbers are drawn uniformly from ``[-max_mode, max_mode]`` per axis (never all
    zero), its amplitude uniformly from ``[0, amplitude]`` and its phase from ``[0, 2 pi)``: the
    initial conditions of PDEBench (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks).

    Args:
        waves: the number of sine waves, at least 1.
        max_mode: the largest mode number per axis, at least 1.
        amplitude: the largest amplitude of a wave.

    Raises:
        ValueError: ``waves`` or ``max_mode`` is below 1.
    """

    waves: int = 4
    max_mode: int = 4
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        if self.waves < 1 or self.max_mode < 1:
            raise ValueError(f"RandomFourierModes needs waves >= 1 and max_mode >= 1; got {self}")

    def __call__(self, grid: Grid, seeds: Sequence[int], dtype: torch.dtype = torch.float32, device: Device | None = None) -> torch.Tensor:
        """Returns one field per seed: ``[len(seeds), 1, *grid.shape]``.

        Args:
            grid: the periodic grid.
            seeds: one seed per field; a field depends on its seed only.
            dtype: the fields' dtype (they are drawn in float64 and then cast).
            device: where the fields are put; None is torch's default device.

        Returns:
            ``[len(seeds), 1, *grid.shape]``.
        """
        coords = grid.mesh(torch.float64)
        fields = []
        for seed in seeds:
            g = member_generator(seed)
            modes = torch.randint(-self.max_mode, self.max_mode + 1, (self.waves, grid.ndim), generator=g)
            # Resample an all-zero mode into (0, ..., 0, 1): a constant wave would shift the mean.
            modes[(modes == 0).all(dim=1), -1] = 1
            amplitudes = self.amplitude * torch.rand(self.waves, generator=g, dtype=torch.float64)
            phases = 2 * math.pi * torch.rand(self.waves, generator=g, dtype=torch.float64)
            field = torch.zeros(grid.shape, dtype=torch.float64)
            for m, a, phi in zip(modes.tolist(), amplitudes, phases, strict=True):
                angle = sum(2 * math.pi * mi * x / length for mi, x, length in zip(m, coords, grid.lengths, strict=True))
                field += a * torch.sin(angle + phi)
            fields.append(field)
        return torch.stack(fields).unsqueeze(1).to(device=device, dtype=dtype)


FieldSampler = GaussianRandomField | RandomFourierModes
"""The samplers of one scalar field; ``StateSampler`` is any sampler of initial states."""


def fno_forcing(grid: Grid) -> torch.Tensor:
    """Returns the FNO paper's vorticity forcing ``0.1 (sin 2pi(x + y) + cos 2pi(x + y))``: ``[ny, nx]``.

    Coordinates are scaled by the axis lengths, so the forcing has one period on any torus.

    Args:
        grid: a 2D periodic grid.

    Returns:
        ``[ny, nx]`` float64.

    Raises:
        ValueError: ``grid`` is not 2D.
    """
    if grid.ndim != 2:
        raise ValueError(f"fno_forcing needs a 2D grid; got shape {grid.shape}")
    y, x = grid.mesh(torch.float64)
    phase = 2 * math.pi * (x / grid.lengths[1] + y / grid.lengths[0])
    return 0.1 * (torch.sin(phase) + torch.cos(phase))


def kolmogorov_forcing(grid: Grid, wavenumber: int = 4, amplitude: float = 1.0) -> torch.Tensor:
    """Returns the vorticity forcing of Kolmogorov flow: ``[ny, nx]``.

    The body force ``F = amplitude * sin(k y) e_x`` with ``k = 2 pi wavenumber / L_y`` has curl
    ``-amplitude * k * cos(k y)``. Pair it with a linear ``drag`` (0.1 in Kochkov et al., "Machine
    learning-accelerated computational fluid dynamics", PNAS 2021) for a statistically steady flow.

    Args:
        grid: a 2D periodic grid, axes ``(y, x)``.
        wavenumber: the number of periods of the body force over ``L_y``.
        amplitude: the body force's amplitude.

    Returns:
        ``[ny, nx]`` float64.

    Raises:
        ValueError: ``grid`` is not 2D.
    """
    if grid.ndim != 2:
        raise ValueError(f"kolmogorov_forcing needs a 2D grid; got shape {grid.shape}")
    y, _ = grid.mesh(torch.float64)
    k = 2 * math.pi * wavenumber / grid.lengths[0]
    return -amplitude * k * torch.cos(k * y)
