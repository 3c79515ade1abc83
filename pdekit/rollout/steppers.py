"""Surrogate time steppers: a model that predicts the next state, or the time derivative that an integrator advances."""

from __future__ import annotations

import math

import torch
from torch import nn

from pdekit.rollout.integrators import INTEGRATORS, integrate


class Stepper(nn.Module):
    """Advances states with a trained operator model.

    ``mode="state"``: the model maps the last ``input_steps`` states to the next one, a step of the
    fixed ``training_dt`` it was trained on. ``mode="derivative"``: the model predicts ``du/dt``
    (times ``1 / derivative_scale``) at the newest state, and ``integrator`` advances it in
    ``substeps`` steps, so any ``dt`` may be asked for ("Predicting change, not states", Zhou and
    Barati Farimani). With ``input_steps > 1`` the older states are the context and the integrator's
    stages replace the newest one.

    ``forward(history [B, input_steps, C, *S], dt, params [B, P] | None) -> [B, C, *S]``.
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
        if mode not in ("state", "derivative"):
            raise ValueError(f"Stepper mode must be 'state' or 'derivative'; got {mode!r}")
        if integrator not in INTEGRATORS:
            raise ValueError(f"unknown integrator {integrator!r}; expected one of {sorted(INTEGRATORS)}")
        if mode == "state" and training_dt is None:
            raise ValueError("a state-mode Stepper needs training_dt: it can only take the step it was trained on")
        self.model, self.mode, self.integrator, self.substeps = model, mode, integrator, substeps
        self.training_dt, self.input_steps, self.derivative_scale = training_dt, input_steps, derivative_scale

    def time_derivative(self, history: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the model's ``du/dt`` at the newest state of ``history [B, input_steps, C, *S]``: ``[B, C, *S]``."""
        if self.mode != "derivative":
            raise ValueError("a state-mode Stepper has no time derivative")
        return self.derivative_scale * self.model(history.flatten(1, 2), params)

    def forward(self, history: torch.Tensor, dt: float, params: torch.Tensor | None = None) -> torch.Tensor:
        if history.ndim < 3 or history.shape[1] != self.input_steps:
            raise ValueError(f"history must be [batch, {self.input_steps} input steps, channel, *space]; got shape {tuple(history.shape)}")
        if self.mode == "state":
            if not math.isclose(dt, self.training_dt, rel_tol=1e-6):
                raise ValueError(
                    f"a state-mode Stepper steps dt={self.training_dt} (its training step); got dt={dt}. Derivative mode can change dt"
                )
            return self.model(history.flatten(1, 2), params)
        context = history[:, :-1]

        def f(u: torch.Tensor) -> torch.Tensor:
            return self.derivative_scale * self.model(torch.cat([context, u.unsqueeze(1)], dim=1).flatten(1, 2), params)

        return integrate(f, history[:, -1], dt, self.integrator, self.substeps)


@torch.no_grad()
def rollout(stepper: nn.Module, history: torch.Tensor, steps: int, dt: float, params: torch.Tensor | None = None) -> torch.Tensor:
    """Returns ``steps`` autoregressive states ``[B, steps, C, *S]`` after ``history [B, k, C, *S]`` (``u0.unsqueeze(1)`` for k=1).

    The whole batch advances together; the output is preallocated and nothing leaves the device.
    """
    states = torch.empty(history.shape[0], steps, *history.shape[2:], dtype=history.dtype, device=history.device)
    for n in range(steps):
        states[:, n] = stepper(history, dt, params)
        history = torch.cat([history[:, 1:], states[:, n : n + 1]], dim=1)
    return states
