"""Surrogate time steppers: a model that predicts the next state, or the time derivative that an integrator advances.

A Stepper's ``mode`` is one of ``STEPPER_MODES`` (``StateMode``, ``DerivativeMode``): what the model
predicts and how that becomes the next state. ``make_stepper_mode`` is the one place a mode's name is checked.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import nn

from pdekit.rollout.integrators import integrate, make_integrator


class StepperMode(Protocol):
    """What a Stepper's model predicts, and how a step is taken from it."""

    name: str

    def check(self, stepper: Stepper) -> None:
        """Raises ValueError if ``stepper``'s settings do not suit this mode."""
        ...

    def step(self, stepper: Stepper, history: torch.Tensor, dt: float, params: torch.Tensor | None) -> torch.Tensor:
        """Returns the state ``dt`` after ``history [B, input_steps, C, *S]``: ``[B, C, *S]``."""
        ...

    def time_derivative(self, stepper: Stepper, history: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        """Returns ``du/dt [B, C, *S]`` at the newest state of ``history``, or raises ValueError if the mode has none."""
        ...


class StateMode:
    """``mode="state"``: the model maps the last ``input_steps`` states to the next one, a step of the ``training_dt`` it was trained on."""

    name = "state"

    def check(self, stepper: Stepper) -> None:
        if stepper.training_dt is None:
            raise ValueError("a state-mode Stepper needs training_dt: it can only take the step it was trained on")

    def step(self, stepper: Stepper, history: torch.Tensor, dt: float, params: torch.Tensor | None) -> torch.Tensor:
        training_dt = stepper.training_dt
        if training_dt is None or not math.isclose(dt, training_dt, rel_tol=1e-6):
            raise ValueError(f"a state-mode Stepper steps dt={training_dt} (its training step); got dt={dt}. Derivative mode can change dt")
        return stepper.model(history.flatten(1, 2), params)

    def time_derivative(self, stepper: Stepper, history: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        raise ValueError("a state-mode Stepper has no time derivative")


class DerivativeMode:
    """``mode="derivative"``: the model predicts ``du/dt / derivative_scale`` and ``integrator`` advances it over any ``dt``.

    With ``input_steps > 1`` the older states are the context and the integrator's stages replace the newest one.
    """

    name = "derivative"

    def check(self, stepper: Stepper) -> None:
        pass  # the integrator and substeps are checked by the Stepper for every mode

    def step(self, stepper: Stepper, history: torch.Tensor, dt: float, params: torch.Tensor | None) -> torch.Tensor:
        context = history[:, :-1]

        def f(u: torch.Tensor) -> torch.Tensor:
            return stepper.derivative_scale * stepper.model(torch.cat([context, u.unsqueeze(1)], dim=1).flatten(1, 2), params)

        return integrate(f, history[:, -1], dt, stepper.integrator, stepper.substeps)

    def time_derivative(self, stepper: Stepper, history: torch.Tensor, params: torch.Tensor | None) -> torch.Tensor:
        return stepper.derivative_scale * stepper.model(history.flatten(1, 2), params)


STEPPER_MODES: dict[str, StepperMode] = {mode.name: mode for mode in (StateMode(), DerivativeMode())}
"""The Stepper modes by name: ``"state"`` and ``"derivative"``."""


def make_stepper_mode(name: str, option: str = "Stepper mode") -> StepperMode:
    """Returns the Stepper mode ``name`` from ``STEPPER_MODES``.

    Args:
        name: ``"state"`` or ``"derivative"``.
        option: what the error message calls the setting.

    Returns:
        The mode object.

    Raises:
        ValueError: if ``name`` is not in ``STEPPER_MODES``, naming ``option`` and the choices.
    """
    if name not in STEPPER_MODES:
        raise ValueError(f"{option} must be one of {sorted(STEPPER_MODES)}; got {name!r}")
    return STEPPER_MODES[name]


class Stepper(nn.Module):
    """Advances states with a trained operator model.

    ``mode="state"``: the model maps the last ``input_steps`` states to the next one, a step of the
    fixed ``training_dt`` it was trained on. ``mode="derivative"``: the model predicts ``du/dt``
    (times ``1 / derivative_scale``) at the newest state, and ``integrator`` advances it in
    ``substeps`` steps, so any ``dt`` may be asked for ("Predicting change, not states", Zhou and
    Barati Farimani). With ``input_steps > 1`` the older states are the context and the integrator's
    stages replace the newest one.

    ``forward(history [B, input_steps, C, *S], dt, params [B, P] | None) -> [B, C, *S]``.

    Args:
        model: ``model(x [B, input_steps * C, *S], params [B, P] | None) -> [B, C, *S]``.
        mode: a name in ``STEPPER_MODES``: ``"state"`` or ``"derivative"``.
        integrator: derivative mode's integrator, a name in ``INTEGRATORS``.
        substeps: derivative mode's integrator steps per ``dt``.
        training_dt: the step a state-mode model was trained on (required in state mode).
        input_steps: the states the model sees, oldest first.
        derivative_scale: the factor on a derivative-mode model's output.

    Raises:
        ValueError: for an unknown ``mode`` or ``integrator``, ``substeps`` or ``input_steps`` below 1,
            or a state mode without ``training_dt``.
    """

    def __init__(
        self,
        model: nn.Module,
        mode: str = "derivative",
        *,
        integrator: str = "rk4",
        substeps: int = 1,
        training_dt: float | None = None,
        input_steps: int = 1,
        derivative_scale: float = 1.0,
    ):
        super().__init__()
        self.stepper_mode = make_stepper_mode(mode)
        make_integrator(integrator)
        for name, value in (("substeps", substeps), ("input_steps", input_steps)):
            if value < 1:
                raise ValueError(f"Stepper {name} must be >= 1; got {value}")
        self.model, self.mode, self.integrator, self.substeps = model, mode, integrator, substeps
        self.training_dt, self.input_steps, self.derivative_scale = training_dt, input_steps, derivative_scale
        self.stepper_mode.check(self)

    def time_derivative(self, history: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the model's ``du/dt`` at the newest state of ``history``.

        Args:
            history: ``[B, input_steps, C, *S]``.
            params: ``[B, P]`` or ``None``.

        Returns:
            ``[B, C, *S]``.

        Raises:
            ValueError: in state mode, which has no time derivative.
        """
        return self.stepper_mode.time_derivative(self, history, params)

    def forward(self, history: torch.Tensor, dt: float, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the state ``dt`` after the newest one of ``history``.

        Args:
            history: ``[B, input_steps, C, *S]``, oldest first.
            dt: the step; in state mode it must be ``training_dt``.
            params: ``[B, P]`` or ``None``.

        Returns:
            ``[B, C, *S]``.

        Raises:
            ValueError: if ``history`` is not ``[B, input_steps, C, *S]``, or a state-mode ``dt`` is not ``training_dt``.
        """
        if history.ndim < 3 or history.shape[1] != self.input_steps:
            raise ValueError(f"history must be [batch, {self.input_steps} input steps, channel, *space]; got shape {tuple(history.shape)}")
        return self.stepper_mode.step(self, history, dt, params)


@torch.no_grad()
def rollout(stepper: nn.Module, history: torch.Tensor, steps: int, dt: float, params: torch.Tensor | None = None) -> torch.Tensor:
    """Returns ``steps`` autoregressive states after ``history`` (``u0.unsqueeze(1)`` for one input state).

    The whole batch advances together; the output is preallocated and nothing leaves the device.

    Args:
        stepper: ``stepper(history [B, k, C, *S], dt, params) -> [B, C, *S]`` (a ``Stepper``, ``CorrectedSolver``, ...).
        history: ``[B, k, C, *S]``, the ``k`` states the stepper sees, oldest first.
        steps: the number of states to produce.
        dt: the step.
        params: ``[B, P]`` or ``None``.

    Returns:
        ``[B, steps, C, *S]``, the states ``dt, 2 dt, ...`` after the newest one of ``history``.
    """
    states = torch.empty(history.shape[0], steps, *history.shape[2:], dtype=history.dtype, device=history.device)
    for n in range(steps):
        states[:, n] = stepper(history, dt, params)
        history = torch.cat([history[:, 1:], states[:, n : n + 1]], dim=1)
    return states
