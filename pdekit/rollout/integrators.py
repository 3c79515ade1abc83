"""Explicit Runge-Kutta integrators for ``du/dt = f(u)``: Euler (order 1), Heun (2), classical RK4 (4).

``INTEGRATORS`` is the registry of them by name; ``make_integrator`` is the one place a name is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Integrator:
    """A named one-step method: ``integrator(f, u, dt)`` returns ``u`` advanced by ``dt`` under ``du/dt = f(u)``.

    Attributes:
        name: its name in ``INTEGRATORS`` (and in a run's ``rollout.integrator``).
        order: its order of accuracy in ``dt``.
        step: the step function ``step(f, u, dt)``.
    """

    name: str
    order: int
    step: Callable[[TimeDerivative, torch.Tensor, float], torch.Tensor]

    def __call__(self, f: TimeDerivative, u: torch.Tensor, dt: float) -> torch.Tensor:
        return self.step(f, u, dt)


INTEGRATORS: dict[str, Integrator] = {
    i.name: i for i in (Integrator("euler", 1, euler), Integrator("heun", 2, heun), Integrator("rk4", 4, rk4))
}
"""The integrators by name: ``"euler"`` (order 1), ``"heun"`` (2), ``"rk4"`` (4)."""


def make_integrator(name: str, option: str = "integrator") -> Integrator:
    """Returns the integrator ``name`` from ``INTEGRATORS``.

    Args:
        name: ``"euler"``, ``"heun"`` or ``"rk4"``.
        option: what the error message calls the setting (e.g. ``"rollout.integrator"``).

    Returns:
        The ``Integrator``.

    Raises:
        ValueError: if ``name`` is not in ``INTEGRATORS``, naming ``option`` and the choices.
    """
    if name not in INTEGRATORS:
        raise ValueError(f"{option} must be one of {sorted(INTEGRATORS)}; got {name!r}")
    return INTEGRATORS[name]


def integrate(f: TimeDerivative, u: torch.Tensor, dt: float, integrator: str = "rk4", substeps: int = 1) -> torch.Tensor:
    """Returns ``u`` advanced by ``dt`` in ``substeps`` equal steps of ``integrator``.

    Args:
        f: the time derivative, ``f(u [B, C, *S]) -> [B, C, *S]``.
        u: the state, ``[B, C, *S]``.
        dt: the whole interval to advance.
        integrator: a name in ``INTEGRATORS`` (``"euler"``, ``"heun"``, ``"rk4"``).
        substeps: the number of equal steps ``dt / substeps``.

    Returns:
        The state ``dt`` later, ``[B, C, *S]``.

    Raises:
        ValueError: for an unknown ``integrator`` or ``substeps < 1``.
    """
    step = make_integrator(integrator)
    if substeps < 1:
        raise ValueError(f"substeps must be >= 1; got {substeps}")
    for _ in range(substeps):
        u = step(f, u, dt / substeps)
    return u
