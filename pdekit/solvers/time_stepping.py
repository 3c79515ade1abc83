"""Time-stepping schemes for semilinear problems in Fourier space: ``dv/dt = L v + N(v)``.

``L`` is a diagonal, real, non-positive linear symbol (diffusion, drag) and ``N`` the rest of
the right-hand side, evaluated pseudo-spectrally by the solver. Every scheme splits its work in
two: ``coefficients(linear, dt)``, computed once per step size in float64, and ``step(v, c, N)``,
the per-step update with no host-device synchronisation. Every scheme declares its ``name`` (its
key in ``SCHEMES``), its global ``order`` of accuracy in time (``math.inf`` when exact), which the
convergence tests assert, and whether it is ``exact`` (one step per output interval).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

Nonlinear = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Exponential:
    """Exact integration of ``dv/dt = L v``: ``v <- exp(L dt) v``. Only for problems with no ``N``."""

    name: ClassVar[str] = "exact"
    order: ClassVar[float] = math.inf
    exact: ClassVar[bool] = True

    def coefficients(self, linear: torch.Tensor, dt: float) -> tuple[torch.Tensor, ...]:
        """Returns the step's coefficients for the linear symbol ``linear`` and the step ``dt``, in float64.

        Args:
            linear: the diagonal symbol ``L``, real, broadcastable to ``[batch, channel, *spectrum]``.
            dt: the step.

        Returns:
            The tensors ``step`` takes as ``c``, each shaped as ``linear``.
        """
        return (torch.exp(linear * dt),)

    def step(self, v: torch.Tensor, c: tuple[torch.Tensor, ...], nonlinear: Nonlinear | None) -> torch.Tensor:
        """Returns ``v`` one step later: ``[batch, channel, *spectrum]``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.
            c: the coefficients ``coefficients`` returned for this step size.
            nonlinear: ``N`` in rfft space; None for a linear problem.

        Returns:
            ``[batch, channel, *spectrum]``.
        """
        return c[0] * v


@dataclass(frozen=True)
class ETDRK4:
    """Fourth-order exponential time-differencing Runge-Kutta scheme.

    S. M. Cox and P. C. Matthews, "Exponential time differencing for stiff systems", J. Comput.
    Phys. 176 (2002). The phi-function coefficients are evaluated as means over a circle of
    ``contour_points`` points in the complex plane around each ``L dt``, which avoids the
    cancellation of the closed forms near zero (A.-K. Kassam and L. N. Trefethen, "Fourth-order
    time-stepping for stiff PDEs", SIAM J. Sci. Comput. 26, 2005). The linear part is integrated
    exactly; four evaluations of ``N`` per step.

    Args:
        contour_points: the points on the circle of the coefficients' contour means.
    """

    contour_points: int = 32
    name: ClassVar[str] = "etdrk4"
    order: ClassVar[float] = 4
    exact: ClassVar[bool] = False

    def coefficients(self, linear: torch.Tensor, dt: float) -> tuple[torch.Tensor, ...]:
        """Returns the step's coefficients for the linear symbol ``linear`` and the step ``dt``, in float64.

        Args:
            linear: the diagonal symbol ``L``, real, broadcastable to ``[batch, channel, *spectrum]``.
            dt: the step.

        Returns:
            The tensors ``step`` takes as ``c``, each shaped as ``linear``.
        """
        z = (linear * dt).to(torch.float64)
        q = torch.zeros_like(z)
        f1 = torch.zeros_like(z)
        f2 = torch.zeros_like(z)
        f3 = torch.zeros_like(z)
        # By symmetry of the circle about the real axis, the mean of the real parts over the
        # upper half circle equals the mean over the whole circle for real z.
        m = self.contour_points
        for j in range(m):
            r = complex(math.cos(math.pi * (j + 0.5) / m), math.sin(math.pi * (j + 0.5) / m))
            lr = z + r
            e = torch.exp(lr)
            q += ((torch.exp(lr / 2) - 1) / lr).real
            f1 += ((-4 - lr + e * (4 - 3 * lr + lr**2)) / lr**3).real
            f2 += ((2 + lr + e * (lr - 2)) / lr**3).real
            f3 += ((-4 - 3 * lr - lr**2 + e * (4 - lr)) / lr**3).real
        scale = dt / m
        return (torch.exp(z), torch.exp(z / 2), q * scale, f1 * scale, f2 * scale, f3 * scale)

    def step(self, v: torch.Tensor, c: tuple[torch.Tensor, ...], nonlinear: Nonlinear | None) -> torch.Tensor:
        """Returns ``v`` one step later: ``[batch, channel, *spectrum]``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.
            c: the coefficients ``coefficients`` returned for this step size.
            nonlinear: ``N`` in rfft space; None for a linear problem.

        Returns:
            ``[batch, channel, *spectrum]``.
        """
        e, e_half, q, f1, f2, f3 = c
        if nonlinear is None:
            return e * v
        # addcmul fuses each "x + coefficient * N" into one pass without a temporary product.
        nv = nonlinear(v)
        v_half = e_half * v
        a = torch.addcmul(v_half, q, nv)
        na = nonlinear(a)
        b = torch.addcmul(v_half, q, na)
        nb = nonlinear(b)
        c_stage = torch.addcmul(e_half * a, q, 2 * nb - nv)
        nc = nonlinear(c_stage)
        out = e * v
        return out.addcmul_(f1, nv).addcmul_(f2, na + nb, value=2).addcmul_(f3, nc)


@dataclass(frozen=True)
class CrankNicolsonEuler:
    """First order: Crank-Nicolson for ``L``, explicit Euler for ``N``.

    The scheme of the Navier-Stokes data generator of the FNO paper (Li et al., "Fourier neural
    operator for parametric partial differential equations", ICLR 2021), kept to reproduce it.
    """

    name: ClassVar[str] = "cn-euler"
    order: ClassVar[float] = 1
    exact: ClassVar[bool] = False

    def coefficients(self, linear: torch.Tensor, dt: float) -> tuple[torch.Tensor, ...]:
        """Returns the step's coefficients for the linear symbol ``linear`` and the step ``dt``, in float64.

        Args:
            linear: the diagonal symbol ``L``, real, broadcastable to ``[batch, channel, *spectrum]``.
            dt: the step.

        Returns:
            The tensors ``step`` takes as ``c``, each shaped as ``linear``.
        """
        z = linear.to(torch.float64) * dt
        return ((1 + z / 2) / (1 - z / 2), dt / (1 - z / 2))

    def step(self, v: torch.Tensor, c: tuple[torch.Tensor, ...], nonlinear: Nonlinear | None) -> torch.Tensor:
        """Returns ``v`` one step later: ``[batch, channel, *spectrum]``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.
            c: the coefficients ``coefficients`` returned for this step size.
            nonlinear: ``N`` in rfft space; None for a linear problem.

        Returns:
            ``[batch, channel, *spectrum]``.
        """
        propagate, gain = c
        if nonlinear is None:
            return propagate * v
        return propagate * v + gain * nonlinear(v)


@dataclass(frozen=True)
class CrankNicolsonHeun:
    """Second order: Crank-Nicolson for ``L``, Heun's predictor-corrector for ``N``."""

    name: ClassVar[str] = "cn-heun"
    order: ClassVar[float] = 2
    exact: ClassVar[bool] = False

    def coefficients(self, linear: torch.Tensor, dt: float) -> tuple[torch.Tensor, ...]:
        """Returns the step's coefficients for the linear symbol ``linear`` and the step ``dt``, in float64.

        Args:
            linear: the diagonal symbol ``L``, real, broadcastable to ``[batch, channel, *spectrum]``.
            dt: the step.

        Returns:
            The tensors ``step`` takes as ``c``, each shaped as ``linear``.
        """
        return CrankNicolsonEuler().coefficients(linear, dt)

    def step(self, v: torch.Tensor, c: tuple[torch.Tensor, ...], nonlinear: Nonlinear | None) -> torch.Tensor:
        """Returns ``v`` one step later: ``[batch, channel, *spectrum]``.

        Args:
            v: the state's rfft ``[batch, channel, *spectrum]``.
            c: the coefficients ``coefficients`` returned for this step size.
            nonlinear: ``N`` in rfft space; None for a linear problem.

        Returns:
            ``[batch, channel, *spectrum]``.
        """
        propagate, gain = c
        if nonlinear is None:
            return propagate * v
        nv = nonlinear(v)
        predicted = propagate * v + gain * nv
        return propagate * v + (gain / 2) * (nv + nonlinear(predicted))


Scheme = Exponential | ETDRK4 | CrankNicolsonEuler | CrankNicolsonHeun
SCHEMES: dict[str, type[Scheme]] = {s.name: s for s in (Exponential, ETDRK4, CrankNicolsonEuler, CrankNicolsonHeun)}
"""The schemes by name: what a solver's ``scheme="..."`` and a recipe's ``scheme`` look up."""


def make_scheme(scheme: str | Scheme) -> Scheme:
    """Returns the scheme named ``scheme`` (one of ``SCHEMES``), or ``scheme`` itself.

    Raises ValueError naming the known schemes when ``scheme`` is an unknown name.
    """
    if not isinstance(scheme, str):
        return scheme
    if scheme not in SCHEMES:
        raise ValueError(f"unknown time-stepping scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    return SCHEMES[scheme]()
