"""The viscous Burgers equation in one periodic dimension."""

from __future__ import annotations

import torch

from pdekit.devices import Device
from pdekit.grid import Grid
from pdekit.solvers.base import SpectralSolver
from pdekit.solvers.fields import FieldSampler, GaussianRandomField
from pdekit.solvers.time_stepping import Scheme


class Burgers(SpectralSolver):
    """Batched 1D viscous Burgers ``du/dt + d(u^2 / 2)/dx = viscosity * d^2u/dx^2`` for ``u: [batch, 1, nx]``.

    Pseudo-spectral with the flux ``u^2 / 2`` computed from 2/3-dealiased ``u`` and dealiased again;
    ETDRK4 in time by default. The default initial field is the FNO paper's Burgers prior
    ``N(0, 625 (-laplacian + 25)^-2)``.

    Args:
        grid: a 1D periodic grid.
        viscosity: ``nu > 0``, a float or a tensor ``[batch]``.
        scheme: the time-stepping scheme (see ``pdekit.solvers.time_stepping``).
        cfl: if set, ``solve`` keeps the CFL number at most ``cfl`` (see ``SpectralSolver``).
        initial_field: the sampler of initial states.
        device: where states live; None is ``default_device()`` (CUDA when present).
        dtype: ``torch.float32`` or ``torch.float64``.

    Raises:
        ValueError: ``grid`` is not 1D, or ``viscosity`` is not positive and finite.
    """

    channels = 1

    def __init__(
        self,
        grid: Grid,
        viscosity: float | torch.Tensor = 0.01,
        *,
        scheme: str | Scheme = "etdrk4",
        cfl: float | None = None,
        initial_field: FieldSampler = GaussianRandomField(alpha=2.0, tau=5.0, sigma=25.0),
        device: Device | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        if grid.ndim != 1:
            raise ValueError(f"Burgers needs a 1D grid; got shape {grid.shape}")
        super().__init__(grid, scheme=scheme, cfl=cfl, device=device, dtype=dtype, initial_field=initial_field)
        self.viscosity = self._per_member("viscosity", viscosity)
        (k,) = grid.derivative_wavenumbers(dtype, self.device)
        self._ik = 1j * k
        self._dealias = grid.dealias_mask(dtype, self.device)

    def linear_symbol(self) -> torch.Tensor:
        """Returns ``-nu |k|^2``: float64, ``[batch or 1, 1, *spectrum]``."""
        return -self.viscosity * self.grid.wavenumber_squared(device=self.device)

    def nonlinear_term(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``-P d(u^2 / 2)/dx`` in rfft space, ``P`` the 2/3 truncation.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.

        Returns:
            ``[batch, 1, nx // 2 + 1]``.
        """
        u = self.to_physical(self._dealias * v)
        return (-0.5 * self._dealias) * self._ik * self.to_spectral(u * u)

    def max_speed_per_spacing(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``max_x |u| / dx`` per member, from the state's rfft ``v``: ``[batch]``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.

        Returns:
            ``[batch]``.
        """
        return self.to_physical(v).abs().flatten(1).amax(dim=1) / self.grid.spacing[0]
