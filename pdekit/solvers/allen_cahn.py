"""The 1D Allen-Cahn equation, a stiff reaction-diffusion benchmark of PINN papers."""

from __future__ import annotations

import torch

from pdekit.devices import Device
from pdekit.grid import Grid
from pdekit.solvers.base import SpectralSolver
from pdekit.solvers.fields import FieldSampler, GaussianRandomField
from pdekit.solvers.time_stepping import Scheme


class AllenCahn(SpectralSolver):
    """``u_t = diffusivity u_xx + reaction (u - u^3)`` on a periodic 1D grid, by ETDRK4.

    The linear part ``diffusivity d_xx + reaction`` is integrated exactly and ``-reaction u^3`` is the
    nonlinear term, taken on the full grid (reference solutions use grids that resolve it). The defaults ``1e-4`` and ``5`` are the PINN
    benchmark's
    (Raissi et al. 2019; Wight and Zhao 2020). ``u: [batch, 1, n]``.

    Args:
        grid: a 1D periodic grid.
        diffusivity: the diffusivity, positive.
        reaction: the reaction rate.
        scheme: the time-stepping scheme (see ``pdekit.solvers.time_stepping``).
        initial_field: the sampler of initial states.
        device: where states live; None is ``default_device()`` (CUDA when present).
        dtype: ``torch.float32`` or ``torch.float64``.

    Raises:
        ValueError: ``grid`` is not 1D, or ``diffusivity`` is not positive and finite.
    """

    channels = 1

    def __init__(
        self,
        grid: Grid,
        diffusivity: float = 1e-4,
        reaction: float = 5.0,
        *,
        scheme: str | Scheme = "etdrk4",
        initial_field: FieldSampler = GaussianRandomField(alpha=2.0, tau=5.0),
        device: Device | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        if grid.ndim != 1:
            raise ValueError(f"AllenCahn needs a 1D grid; got shape {grid.shape}")
        super().__init__(grid, scheme=scheme, cfl=None, device=device, dtype=dtype, initial_field=initial_field)
        self.diffusivity = self._per_member("diffusivity", diffusivity)
        self.reaction = float(reaction)

    def linear_symbol(self) -> torch.Tensor:
        """Returns ``-diffusivity |k|^2 + reaction``: float64, ``[*spectrum]``."""
        return -self.diffusivity * self.grid.wavenumber_squared(device=self.device) + self.reaction

    def nonlinear_term(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``-reaction u^3`` in rfft space, from the state's rfft ``v``: ``[batch, 1, *spectrum]``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.

        Returns:
            ``[batch, 1, *spectrum]``.
        """
        u = self.to_physical(v)
        return -self.reaction * self.to_spectral(u * u * u)
