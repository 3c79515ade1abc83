"""The heat equation ``du/dt = div(kappa grad u)`` on a periodic grid in 1D, 2D or 3D."""

from __future__ import annotations

import torch

from pdekit.devices import Device
from pdekit.grid import Grid
from pdekit.solvers.base import SpectralSolver
from pdekit.solvers.fields import FieldSampler, GaussianRandomField
from pdekit.solvers.time_stepping import Scheme


class Heat(SpectralSolver):
    """Batched periodic heat equation, Fourier pseudo-spectral in space.

    ``diffusivity`` is one of
      - a float or a tensor ``[batch]`` (one constant per member): the solution is advanced by the
        exact integrating factor ``exp(-kappa |k|^2 t)``, exact in time for any step;
      - a field ``[batch or 1, *space]`` (spatially varying ``kappa(x) > 0``): the stiff part
        ``kappa_max laplacian`` is integrated exactly and the remainder
        ``div((kappa - kappa_max) grad u)`` explicitly by ETDRK4, fourth order in time. Using the
        maximum keeps the explicit remainder anti-diffusive and bounded by the exact part, which
        keeps large steps stable.

    The state has one channel: ``u: [batch, 1, *space]``.

    Args:
        grid: the periodic grid (1D, 2D or 3D).
        diffusivity: ``kappa > 0``: a float, a tensor ``[batch]``, or a field ``[batch or 1, *space]``.
        scheme: the time-stepping scheme; None for ``"exact"`` with a constant diffusivity and
            ``"etdrk4"`` with a field.
        initial_field: the sampler of initial states.
        device: where states live; None is ``default_device()`` (CUDA when present).
        dtype: ``torch.float32`` or ``torch.float64``.

    Raises:
        ValueError: ``diffusivity`` is not positive and finite (naming the member, and the point of a
            field), a field does not match the grid, or ``scheme="exact"`` is asked of a field.
    """

    channels = 1

    def __init__(
        self,
        grid: Grid,
        diffusivity: float | torch.Tensor = 0.01,
        *,
        scheme: str | Scheme | None = None,
        initial_field: FieldSampler = GaussianRandomField(),
        device: Device | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        field = diffusivity if isinstance(diffusivity, torch.Tensor) and diffusivity.ndim == 1 + grid.ndim else None
        is_field = field is not None
        default_scheme = "etdrk4" if is_field else "exact"
        super().__init__(grid, scheme=scheme or default_scheme, cfl=None, device=device, dtype=dtype, initial_field=initial_field)
        if field is not None:
            self.diffusivity = self._diffusivity_field(field)
            # [batch or 1, 1, *1]: the largest diffusivity of each member.
            self.reference_diffusivity = self.diffusivity.amax(dim=self.grid.dims, keepdim=True)
        else:
            self.diffusivity = self._per_member("diffusivity", diffusivity)
            self.reference_diffusivity = self.diffusivity
        if self.scheme.exact and is_field:
            raise ValueError("a spatially varying diffusivity has no exact integrator; use scheme='etdrk4'")
        self.has_nonlinear_term = is_field
        if is_field:
            self._ik = [1j * k.to(dtype) for k in grid.derivative_wavenumbers(device=self.device)]
            self._excess = (self.diffusivity - self.reference_diffusivity).to(dtype)

    def _diffusivity_field(self, field: torch.Tensor) -> torch.Tensor:
        if tuple(field.shape[1:]) != self.grid.shape:
            raise ValueError(f"diffusivity field has shape {tuple(field.shape)}; expected [batch or 1, *{self.grid.shape}]")
        bad = ~torch.isfinite(field) | (field <= 0)
        if bad.any():
            index = tuple(bad.nonzero()[0].tolist())
            raise ValueError(f"diffusivity must be positive and finite; got {field[index].item()} at member {index[0]}, point {index[1:]}")
        if field.shape[0] > 1:
            self._set_batch("diffusivity", field.shape[0])
        return field.detach().to(device=self.device, dtype=torch.float64).unsqueeze(1)

    def linear_symbol(self) -> torch.Tensor:
        """Returns ``-kappa_max |k|^2`` (``-kappa |k|^2`` for a constant diffusivity): float64, ``[batch or 1, 1, *spectrum]``."""
        return -self.reference_diffusivity * self.grid.wavenumber_squared(device=self.device)

    def nonlinear_term(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``div((kappa - kappa_max) grad u)`` in rfft space (variable diffusivity only).

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.

        Returns:
            ``[batch, 1, *spectrum]``.
        """
        gradient = self.to_physical(torch.stack([k * v for k in self._ik]))
        flux = self.to_spectral(self._excess * gradient)
        return sum(k * f for k, f in zip(self._ik, flux, strict=True))
