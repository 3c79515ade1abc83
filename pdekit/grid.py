"""Periodic grids: coordinates, spacing, Fourier wavenumbers and the 2/3 dealiasing mask.

Axes are ordered as a field's spatial axes: ``(x,)`` in 1D, ``(y, x)`` in 2D and ``(z, y, x)``
in 3D, so a field on the grid has shape ``[batch, channel, *grid.shape]``. Spectral arrays use
the real-FFT layout of ``torch.fft.rfftn`` over those axes: full frequencies on every axis but the
last, which keeps only the ``n // 2 + 1`` non-negative ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pdekit.devices import Device


@dataclass(frozen=True, init=False)
class Grid:
    """A uniform periodic grid on ``[0, L_0) x ... x [0, L_{d-1})``.

    Args:
        shape: points per axis, in tensor order (``(ny, nx)`` in 2D), at least 2 each; any, also
            unequal, counts.
        lengths: period of each axis, positive and finite; None for the unit torus.

    Raises:
        ValueError: ``shape`` does not have 1, 2 or 3 axes of at least 2 points, or ``lengths`` does
            not give one positive, finite length per axis.
    """

    shape: tuple[int, ...]
    lengths: tuple[float, ...]

    # Written out rather than generated so that ``lengths`` is a tuple once built (None is only an
    # argument): code reading ``grid.lengths`` never has to handle None.
    def __init__(self, shape: Sequence[int], lengths: Sequence[float] | None = None) -> None:
        axes = tuple(int(n) for n in shape)
        if not 1 <= len(axes) <= 3:
            raise ValueError(f"Grid shape must have 1, 2 or 3 axes; got {shape}")
        if any(n < 2 for n in axes):
            raise ValueError(f"Grid needs at least 2 points per axis; got shape {shape}")
        periods = (1.0,) * len(axes) if lengths is None else tuple(float(length) for length in lengths)
        if len(periods) != len(axes):
            raise ValueError(f"Grid lengths {lengths} do not match shape {shape}")
        if not all(math.isfinite(length) and length > 0 for length in periods):
            raise ValueError(f"Grid lengths must be positive and finite; got {lengths}")
        object.__setattr__(self, "shape", axes)
        object.__setattr__(self, "lengths", periods)

    @property
    def ndim(self) -> int:
        """The number of spatial axes: 1, 2 or 3."""
        return len(self.shape)

    @property
    def dims(self) -> tuple[int, ...]:
        """Tensor dimensions of the spatial axes of a ``[batch, channel, *space]`` field."""
        return tuple(range(-self.ndim, 0))

    @property
    def spacing(self) -> tuple[float, ...]:
        """The point spacing ``L / n`` of every axis."""
        return tuple(length / n for length, n in zip(self.lengths, self.shape, strict=True))

    @property
    def spectral_shape(self) -> tuple[int, ...]:
        """Shape of ``rfftn`` of a field over the grid's axes."""
        return (*self.shape[:-1], self.shape[-1] // 2 + 1)

    def coordinates(self, dtype: torch.dtype = torch.float64, device: Device | None = None) -> tuple[torch.Tensor, ...]:
        """Returns the 1D coordinate vector ``x_j = j * L / n`` of every axis.

        Args:
            dtype: the coordinates' dtype.
            device: where they are made; None is torch's default device.

        Returns:
            One ``[n]`` tensor per axis, in the grid's axis order.
        """
        return tuple(torch.arange(n, dtype=dtype, device=device) * (length / n) for n, length in zip(self.shape, self.lengths, strict=True))

    def mesh(self, dtype: torch.dtype = torch.float64, device: Device | None = None) -> tuple[torch.Tensor, ...]:
        """Returns the coordinate arrays of every axis, each of shape ``grid.shape``.

        Args:
            dtype: the coordinates' dtype.
            device: where they are made; None is torch's default device.

        Returns:
            One ``[*grid.shape]`` tensor per axis (``indexing="ij"``), in the grid's axis order.
        """
        return torch.meshgrid(*self.coordinates(dtype, device), indexing="ij")

    def mode_numbers(self, device: Device | None = None) -> tuple[torch.Tensor, ...]:
        """Returns the integer Fourier mode numbers per axis, shaped to broadcast over the spectrum.

        Args:
            device: where they are made; None is torch's default device.

        Returns:
            One int64 tensor per axis, of length ``n`` (``n // 2 + 1`` on the last axis) along that
            axis and 1 along the others, in ``torch.fft.fftfreq`` order.
        """
        modes = []
        for axis, n in enumerate(self.shape):
            last = axis == self.ndim - 1
            m = torch.arange(n // 2 + 1, device=device) if last else torch.fft.fftfreq(n, 1 / n, device=device)
            view = [1] * self.ndim
            view[axis] = -1
            modes.append(m.round().to(torch.int64).view(view))
        return tuple(modes)

    def wavenumbers(self, dtype: torch.dtype = torch.float64, device: Device | None = None) -> tuple[torch.Tensor, ...]:
        """Returns the angular wavenumbers ``2 pi m / L`` per axis, broadcastable over the spectrum.

        Args:
            dtype: the wavenumbers' dtype.
            device: where they are made; None is torch's default device.

        Returns:
            One tensor per axis, shaped as ``mode_numbers``.
        """
        return tuple(m.to(dtype) * (2 * math.pi / length) for m, length in zip(self.mode_numbers(device), self.lengths, strict=True))

    def derivative_wavenumbers(self, dtype: torch.dtype = torch.float64, device: Device | None = None) -> tuple[torch.Tensor, ...]:
        """Returns the wavenumbers for first (odd) derivatives: as ``wavenumbers`` with the Nyquist mode zeroed.

        The Nyquist mode of an even axis has no sign, so ``i k`` there would make the derivative of
        a real field complex; setting it to zero is the standard choice.

        Args:
            dtype: the wavenumbers' dtype.
            device: where they are made; None is torch's default device.

        Returns:
            One tensor per axis, shaped as ``mode_numbers``.
        """
        result = []
        for k, m, n in zip(self.wavenumbers(dtype, device), self.mode_numbers(device), self.shape, strict=True):
            nyquist = (n % 2 == 0) & (m.abs() == n // 2)
            result.append(torch.where(nyquist, torch.zeros_like(k), k))
        return tuple(result)

    def wavenumber_squared(self, dtype: torch.dtype = torch.float64, device: Device | None = None) -> torch.Tensor:
        """Returns ``|k|^2`` on the spectral grid: the symbol of ``-laplacian``.

        Args:
            dtype: the result's dtype.
            device: where it is made; None is torch's default device.

        Returns:
            ``[*grid.spectral_shape]``.
        """
        squares = [k**2 for k in self.wavenumbers(dtype, device)]
        return functools.reduce(torch.add, squares)

    def dealias_mask(self, dtype: torch.dtype = torch.float64, device: Device | None = None) -> torch.Tensor:
        """Returns the 2/3-rule mask: 1 where every axis' ``|m| < n / 3``, else 0 (Orszag, 1971).

        Products of two masked fields then alias no energy into the kept modes, which makes the
        pseudo-spectral quadratic term an exact Galerkin truncation.

        Args:
            dtype: the mask's dtype.
            device: where it is made; None is torch's default device.

        Returns:
            ``[*grid.spectral_shape]``, 0 or 1.
        """
        keep = torch.ones(self.spectral_shape, dtype=torch.bool, device=device)
        for m, n in zip(self.mode_numbers(device), self.shape, strict=True):
            keep = keep & (3 * m.abs() < n)
        return keep.to(dtype)


def resize_spectrum(v: torch.Tensor, old: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Returns the rfft coefficients ``v [..., *rfft(old)]`` of a field on the periodic grid ``old`` in the rfft layout of ``shape``.

    Keeps the modes ``|m| <= (min(n_old, n_new) - 1) // 2`` of every axis and zeroes the rest, so
    neither grid's Nyquist mode (which has no sign) survives; axes may shrink and grow at once. The
    one re-layout of Fourier modes behind ``fourier_resample``, ``fourier_truncate`` and the
    Gray-Scott solver's alias-free products.

    Args:
        v: rfft coefficients over the last ``len(old)`` axes.
        old: the grid ``v`` belongs to.
        shape: the grid whose layout is returned.

    Returns:
        ``[..., *rfft(shape)]``.
    """
    d = len(shape)
    for axis, (n_old, n_new) in enumerate(zip(old, shape, strict=True)):
        dim, keep = axis - d, (min(n_old, n_new) - 1) // 2
        if axis == d - 1:
            v = torch.cat([v.narrow(dim, 0, keep + 1), v.new_zeros(*v.shape[:dim], n_new // 2 - keep)], dim=dim)
        else:
            gap = v.new_zeros(*v.shape[:dim], n_new - 2 * keep - 1, *v.shape[dim:][1:])
            v = torch.cat([v.narrow(dim, 0, keep + 1), gap, v.narrow(dim, n_old - keep, keep)], dim=dim)
    return v


def fourier_resample(u: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Returns ``u [..., *old]`` on the periodic grid ``shape``: its Fourier modes ``|m| <= (min(n_old, n_new) - 1) // 2`` per axis, the
    rest zero.

    Coarsening drops the high modes (no aliasing, unlike taking every k-th point); refining is
    band-limited (zero-padded) interpolation, exact for a field that the coarse grid resolves. Axes
    may be coarsened and refined at once.

    Args:
        u: a real field ``[..., *old]``; its last ``len(shape)`` axes are space.
        shape: the new grid's points per axis.

    Returns:
        ``[..., *shape]``; ``u`` itself when ``shape`` is ``old``.
    """
    shape = tuple(int(n) for n in shape)
    d = len(shape)
    old = tuple(u.shape[-d:])
    if old == shape:
        return u
    dims = tuple(range(-d, 0))
    v = resize_spectrum(torch.fft.rfftn(u, dim=dims), old, shape)
    return torch.fft.irfftn(v, s=shape, dim=dims) * (math.prod(shape) / math.prod(old))


def fourier_truncate(u: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Returns ``u [..., *old_shape]`` on a coarser periodic grid ``shape`` by dropping its high Fourier modes.

    ``fourier_resample`` restricted to coarsening: keeps the modes ``|m| <= (n_new - 1) // 2`` of
    every axis, so the coarse field is the band-limited part of the fine one, with no aliasing.

    Args:
        u: a real field ``[..., *old_shape]`` on a periodic grid; its last ``len(shape)`` axes are space.
        shape: the coarse grid's points per axis, none more than ``old_shape``'s.

    Returns:
        ``[..., *shape]``; ``u`` itself when ``shape`` is ``old_shape``.

    Raises:
        ValueError: ``shape`` is finer than ``old_shape`` on some axis.
    """
    old = tuple(u.shape[-len(shape) :])
    if any(n > o for n, o in zip(shape, old, strict=True)):
        raise ValueError(f"fourier_truncate refines nothing: {old} -> {shape}")
    return fourier_resample(u, shape)
