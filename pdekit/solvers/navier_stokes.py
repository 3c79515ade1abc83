"""Two-dimensional incompressible Navier-Stokes on the torus, in vorticity-streamfunction form."""

from __future__ import annotations

import torch

from pdekit.devices import Device
from pdekit.grid import Grid
from pdekit.solvers.base import SpectralSolver
from pdekit.solvers.fields import FieldSampler, GaussianRandomField
from pdekit.solvers.time_stepping import Scheme


def velocity_from_vorticity(w: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Returns the velocity ``(u, v) = (d psi/dy, -d psi/dx)``, ``-laplacian psi = w``: ``[..., 2, ny, nx]`` from ``w [..., 1, ny, nx]``.

    Spectral and exact for the band-limited field; any leading axes (batch, time) are carried along.
    The velocity has zero mean, as the streamfunction of a zero-mean vorticity.
    """
    if grid.ndim != 2 or tuple(w.shape[-3:]) != (1, *grid.shape):
        raise ValueError(f"velocity_from_vorticity needs w of shape [..., 1, *{grid.shape}] on a 2D grid; got {tuple(w.shape)}")
    real = torch.float64 if w.dtype == torch.float64 else torch.float32
    ky, kx = (k.to(real) for k in grid.derivative_wavenumbers(device=w.device))
    k2 = grid.wavenumber_squared(device=w.device)
    psi = torch.fft.rfftn(w, dim=grid.dims) * torch.where(k2 > 0, 1 / k2.clamp_min(1e-300), 0.0).to(real)
    return torch.fft.irfftn(torch.cat([1j * ky * psi, -1j * kx * psi], dim=-3), s=grid.shape, dim=grid.dims)


class NavierStokes2D(SpectralSolver):
    """Batched 2D incompressible Navier-Stokes for the vorticity ``w: [batch, 1, ny, nx]``.

    ``dw/dt + u . grad w = viscosity * laplacian w - drag * w + forcing_amplitude * forcing``,
    with the streamfunction ``-laplacian psi = w`` and velocity ``u = (d psi/dy, -d psi/dx)``,
    the convention of the FNO paper (Li et al., ICLR 2021).

    Pseudo-spectral in space: the advection term is computed in physical space from 2/3-dealiased
    fields and dealiased again, which makes it an exact Galerkin truncation (energy and enstrophy
    are conserved by the truncated nonlinear term). The default scheme ETDRK4 is fourth order in
    time and integrates viscosity and drag exactly; ``scheme="cn-euler"`` is the first-order
    scheme of the FNO paper's data generator and ``"cn-heun"`` its second-order variant.

    Args:
        grid: a 2D periodic grid, axes ``(y, x)``.
        viscosity: ``nu > 0``, a float or a tensor ``[batch]``.
        forcing: the vorticity forcing ``[ny, nx]`` or ``[batch, 1, ny, nx]`` (see
            ``fields.fno_forcing`` and ``fields.kolmogorov_forcing``); None for unforced flow.
        forcing_amplitude: a factor ``>= 0`` on ``forcing``, float or ``[batch]``.
        drag: linear damping ``>= 0``, float or ``[batch]``.
        scheme: the time-stepping scheme (see ``pdekit.solvers.time_stepping``).
        cfl: if set, ``solve`` keeps the CFL number at most ``cfl`` (see ``SpectralSolver``).
        initial_field: sampler of initial vorticities; the FNO paper's Gaussian random field by default.
        device: where states live; None is ``default_device()`` (CUDA when present).
        dtype: ``torch.float32`` or ``torch.float64``.

    Raises:
        ValueError: ``grid`` is not 2D, a parameter is out of range (naming it and the member), or
            ``forcing`` has another shape or is not finite.
    """

    channels = 1

    def __init__(
        self,
        grid: Grid,
        viscosity: float | torch.Tensor = 1e-3,
        *,
        forcing: torch.Tensor | None = None,
        forcing_amplitude: float | torch.Tensor = 1.0,
        drag: float | torch.Tensor = 0.0,
        scheme: str | Scheme = "etdrk4",
        cfl: float | None = None,
        initial_field: FieldSampler = GaussianRandomField(alpha=2.5, tau=7.0),
        device: Device | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        if grid.ndim != 2:
            raise ValueError(f"NavierStokes2D needs a 2D grid; got shape {grid.shape}")
        super().__init__(grid, scheme=scheme, cfl=cfl, device=device, dtype=dtype, initial_field=initial_field)
        self.viscosity = self._per_member("viscosity", viscosity)
        self.drag = self._per_member("drag", drag, allow_zero=True)
        self.forcing_amplitude = self._per_member("forcing_amplitude", forcing_amplitude, allow_zero=True)
        self.forcing = None if forcing is None else self._forcing(forcing)

        ky, kx = (k.to(dtype) for k in grid.derivative_wavenumbers(device=self.device))
        self._iky, self._ikx = 1j * ky, 1j * kx
        k2 = grid.wavenumber_squared(device=self.device)
        self._inverse_laplacian = torch.where(k2 > 0, 1 / k2.clamp_min(1e-300), 0.0).to(dtype)
        self._dealias = grid.dealias_mask(dtype, self.device)
        self._forcing_hat = None
        if self.forcing is not None:
            self._forcing_hat = (self.forcing_amplitude * self.to_spectral(self.forcing.to(torch.float64))).to(self.complex_dtype)
        self._speed_scale = torch.tensor([1 / grid.spacing[1], 1 / grid.spacing[0]], dtype=dtype, device=self.device)
        # The nonlinear term's four fields (u, v, dw/dx, dw/dy) from w in one product: dealiasing,
        # inverse Laplacian and derivatives folded into one multiplier, kept only on the columns
        # (x modes) that the 2/3 rule keeps, so the inverse transform along y skips the others.
        self._kept_columns = (grid.shape[1] - 1) // 3 + 1
        mask = self._dealias
        multipliers = (
            self._iky * self._inverse_laplacian * mask,
            -self._ikx * self._inverse_laplacian * mask,
            self._ikx * mask,
            self._iky * mask,
        )
        self._fields_multiplier = torch.stack(torch.broadcast_tensors(*multipliers))[..., : self._kept_columns].contiguous()
        self._negative_dealias = (-mask).to(self.complex_dtype)

    def _forcing(self, forcing: torch.Tensor) -> torch.Tensor:
        forcing = torch.as_tensor(forcing)
        if tuple(forcing.shape) == self.grid.shape:
            forcing = forcing.view(1, 1, *self.grid.shape)
        if forcing.ndim != 4 or tuple(forcing.shape[1:]) != (1, *self.grid.shape):
            raise ValueError(f"forcing has shape {tuple(forcing.shape)}; expected {self.grid.shape} or [batch, 1, *{self.grid.shape}]")
        if not torch.isfinite(forcing).all():
            raise ValueError("forcing holds NaN or infinity")
        if forcing.shape[0] > 1:
            self._set_batch("forcing", forcing.shape[0])
        return forcing.detach().to(device=self.device, dtype=torch.float64)

    def linear_symbol(self) -> torch.Tensor:
        """Returns ``-nu |k|^2 - drag``: float64, ``[batch or 1, 1, *spectrum]``."""
        k2 = self.grid.wavenumber_squared(device=self.device)
        return -(self.viscosity * k2 + self.drag)

    def _velocity_hat(self, w_hat: torch.Tensor) -> torch.Tensor:
        """Returns the velocity ``(u, v)`` in rfft space, ``[batch, 2, *spectrum]``, from ``w_hat [batch, 1, ...]``."""
        psi = self._inverse_laplacian * w_hat
        return torch.cat([self._iky * psi, -self._ikx * psi], dim=1)

    def nonlinear_term(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``-P(u . grad w) + forcing`` in rfft space, ``P`` the 2/3 truncation.

        The inverse transform is an ``ifft`` along y over the kept x modes only, then an ``irfft``
        along x (which pads the dropped modes with zeros itself): the same values as ``irfftn`` of
        the masked spectrum, 1.6-2.1x the member-steps/s of the former cat-and-irfftn form on a
        CPU (benchmarks/RESULTS.md).

        Args:
            v: the vorticity's rfft ``[batch, 1, ny, nx // 2 + 1]``.

        Returns:
            ``[batch, 1, ny, nx // 2 + 1]``.
        """
        kept = v[..., : self._kept_columns] * self._fields_multiplier  # [B, 4, ny, kept]
        fields = torch.fft.irfft(torch.fft.ifft(kept, dim=-2), self.grid.shape[1], dim=-1)
        advection = torch.addcmul(fields[:, 0:1] * fields[:, 2:3], fields[:, 1:2], fields[:, 3:4])
        result = self.to_spectral(advection) * self._negative_dealias
        if self._forcing_hat is not None:
            result = result + self._forcing_hat
        return result

    def max_speed_per_spacing(self, v: torch.Tensor) -> torch.Tensor:
        """Returns ``max_x (|u| / dx + |v| / dy)`` per member, from the vorticity's rfft ``v``: ``[batch]``.

        Args:
            v: the vorticity's rfft ``[batch, 1, ny, nx // 2 + 1]``.

        Returns:
            ``[batch]``.
        """
        velocity = self.to_physical(self._velocity_hat(v))
        return (velocity.abs() * self._speed_scale.view(1, 2, 1, 1)).sum(dim=1).flatten(1).amax(dim=1)

    def streamfunction(self, w: torch.Tensor) -> torch.Tensor:
        """Returns the streamfunction ``psi`` with ``-laplacian psi = w`` and zero mean: ``[batch, 1, ny, nx]``.

        Args:
            w: vorticities ``[batch, 1, ny, nx]``, states of this solver.

        Returns:
            ``[batch, 1, ny, nx]``.

        Raises:
            ValueError: ``w`` is not a state of this solver.
        """
        self.check_state(w, "w")
        return self.to_physical(self._inverse_laplacian * self.to_spectral(w))

    def velocity(self, w: torch.Tensor) -> torch.Tensor:
        """Returns the velocity ``(u, v) = (d psi/dy, -d psi/dx)`` of vorticity ``w``: ``[batch, 2, ny, nx]``.

        Args:
            w: vorticities ``[batch, 1, ny, nx]``, states of this solver.

        Returns:
            ``[batch, 2, ny, nx]``, ``u`` (along x) then ``v`` (along y).

        Raises:
            ValueError: ``w`` is not a state of this solver.
        """
        self.check_state(w, "w")
        return velocity_from_vorticity(w, self.grid)
