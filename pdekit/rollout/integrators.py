"""Explicit Runge-Kutta integrators for ``du/dt = f(u)``: Euler (order 1), Heun (2), classical RK4 (4)."""

from __future__ import annotations

from collections.abc import Callable

import torch

TimeDerivative = Callable[[torch.Tensor], torch.Tensor]


def euler(f: TimeDerivative, u: torch.Tensor, dt: float) -> torch.Tensor:
    """Returns ``u + dt f(u)``: forward Euler, first order."""
    return u + dt * f(u)


def heun(f: TimeDerivative, u: torch.Tensor, dt: float) -> torch.Tensor:
    """Returns one step of Heun's method (explicit trapezoid), second order."""
    k1 = f(u)
    k2 = f(u + dt * k1)
    return u + 0.5 * dt * (k1 + k2)


def rk4(f: TimeDerivative, u: torch.Tensor, dt: float) -> torch.Tensor:
    """Returns one step of the classical fourth-order Runge-Kutta method."""
    k1 = f(u)
    k2 = f(u + 0.5 * dt * k1)
    k3 = f(u + 0.5 * dt * k2)
    k4 = f(u + dt * k3)
    return u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


INTEGRATORS = {"euler": euler, "heun": heun, "rk4": rk4}


def integrate(f: TimeDerivative, u: torch.Tensor, dt: float, integrator: str = "rk4", substeps: int = 1) -> torch.Tensor:
    """Returns ``u`` advanced by ``dt`` in ``substeps`` equal steps of ``integrator`` (``"euler"``, ``"heun"``, ``"rk4"``)."""
    if integrator not in INTEGRATORS:
        raise ValueError(f"unknown integrator {integrator!r}; expected one of {sorted(INTEGRATORS)}")
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1; got {substeps}")
    step = INTEGRATORS[integrator]
    for _ in range(substeps):
        u = step(f, u, dt / substeps)
    return u
