"""Training objectives for surrogates that must roll out: derivative targets, unrolling, pushforward, curriculum, noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pdekit.rollout.integrators import INTEGRATORS
from pdekit.rollout.steppers import Stepper


@dataclass(frozen=True)
class RolloutTraining:
    """How a surrogate is trained (the ``[rollout]`` section of a run's configuration).

    - ``mode``: ``"state"`` (predict the next state) or ``"derivative"`` (predict ``du/dt``; Zhou and
      Barati Farimani, "Predicting change, not states"). With ``unroll=1`` a derivative model is fitted
      to finite differences of the stored snapshots: central ``(u_{n+1} - u_{n-1}) / 2 dt`` when the
      window has two or more input states, forward ``(u_{n+1} - u_n) / dt`` otherwise.
      ``derivative_scale`` divides the targets (0: set from the data's standard deviation at start).
    - ``unroll``: steps rolled out per window (the window's ``target_steps`` must be at least this);
      the loss is averaged over them. ``pushforward``: only the last step carries gradients, the
      earlier ones feed it their (detached) predictions: the pushforward trick of Brandstetter, Worrall
      and Welling, "Message passing neural PDE solvers", ICLR 2022.
    - ``teacher_forcing_epochs``: a curriculum from teacher forcing to autoregression; in epoch ``e``
      each unrolled step is fed the true state with probability ``max(0, 1 - e / teacher_forcing_epochs)``.
    - ``noise``: standard deviation of Gaussian noise added to the input states (in normalised units;
      Sanchez-Gonzalez et al., "Learning to simulate complex physics with graph networks", ICML 2020).
    """

    mode: str = "state"
    integrator: str = "rk4"
    substeps: int = 1
    derivative_scale: float = 0.0
    unroll: int = 1
    pushforward: bool = False
    teacher_forcing_epochs: int = 0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("state", "derivative"):
            raise ValueError(f"rollout.mode must be 'state' or 'derivative'; got {self.mode!r}")
        if self.integrator not in INTEGRATORS:
            raise ValueError(f"rollout.integrator must be one of {sorted(INTEGRATORS)}; got {self.integrator!r}")
        if self.unroll < 1 or self.substeps < 1 or self.noise < 0 or self.teacher_forcing_epochs < 0:
            raise ValueError(f"rollout needs unroll >= 1, substeps >= 1, noise >= 0, teacher_forcing_epochs >= 0; got {self}")

    def stepper(self, model: nn.Module, dt: float, input_steps: int) -> Stepper:
        """Returns the Stepper that advances states with ``model`` as this training defines it."""
        return Stepper(
            model, self.mode, integrator=self.integrator, substeps=self.substeps, training_dt=dt,
            input_steps=input_steps, derivative_scale=self.derivative_scale or 1.0,
        )


def finite_difference_derivative(history: torch.Tensor, following: torch.Tensor, dt: float) -> torch.Tensor:
    """Returns ``du/dt`` at the newest state of ``history [B, k, C, *S]`` from the state after it ``[B, C, *S]``.

    Central (second order) when ``k >= 2``, forward (first order) when ``k = 1``.
    """
    if history.shape[1] >= 2:
        return (following - history[:, -2]) / (2 * dt)
    return (following - history[:, -1]) / dt


class RolloutObjective:
    """The Trainer objective of ``RolloutTraining``: windows ``inputs [B, k*C, *S]``, ``targets [B, m*C, *S]``.

    ``loss(network, inputs, targets, params, loss_fn, epoch)`` is the training loss;
    ``prediction(model, inputs, targets, params)`` gives one step's ``(prediction, truth)`` in state
    units for validation.
    """

    def __init__(self, training: RolloutTraining, *, channels: int, input_steps: int, dt: float):
        self.training, self.channels, self.input_steps, self.dt = training, channels, input_steps, dt
        self.scale = training.derivative_scale or 1.0

    def _split(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        history = inputs.unflatten(1, (self.input_steps, self.channels))
        truth = targets.unflatten(1, (targets.shape[1] // self.channels, self.channels))
        if truth.shape[1] < self.training.unroll:
            raise ValueError(f"rollout.unroll={self.training.unroll} needs windows of at least that many target steps; got {truth.shape[1]}")
        return history, truth

    def loss(self, network: nn.Module, inputs, targets, params, loss_fn, epoch: int) -> torch.Tensor:
        t = self.training
        history, truth = self._split(inputs, targets)
        if t.noise > 0:
            history = history + t.noise * torch.randn_like(history)
        if t.mode == "derivative" and t.unroll == 1:
            derivative = finite_difference_derivative(history, truth[:, 0], self.dt) / self.scale
            return loss_fn(network(history.flatten(1, 2), params), derivative)
        stepper = t.stepper(network, self.dt, self.input_steps)
        teacher = max(0.0, 1.0 - epoch / t.teacher_forcing_epochs) if t.teacher_forcing_epochs else 0.0
        losses = []
        for j in range(t.unroll):
            with_gradient = not t.pushforward or j == t.unroll - 1
            with torch.set_grad_enabled(with_gradient and torch.is_grad_enabled()):
                prediction = stepper(history, self.dt, params)
            if with_gradient:
                losses.append(loss_fn(prediction, truth[:, j]))
            if j < t.unroll - 1:
                fed = truth[:, j] if teacher > 0 and torch.rand(()).item() < teacher else prediction  # a CPU draw: no device sync
                history = torch.cat([history[:, 1:], fed.unsqueeze(1)], dim=1)
        return torch.stack(losses).mean()

    def prediction(self, model: nn.Module, inputs, targets, params) -> tuple[torch.Tensor, torch.Tensor]:
        history, truth = self._split(inputs, targets)
        return self.training.stepper(model, self.dt, self.input_steps)(history, self.dt, params), truth[:, 0]
