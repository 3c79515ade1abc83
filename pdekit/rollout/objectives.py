"""Training objectives for surrogates that must roll out: derivative targets, unrolling, pushforward, curriculum, noise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pdekit.rollout.derivatives import DERIVATIVE_TARGETS, derivative_target
from pdekit.rollout.integrators import make_integrator
from pdekit.rollout.steppers import STEPPER_MODES, Stepper

# The Stepper's modes, and correction: pdekit.rollout.correction, with the run's [correction] section.
MODES = (*STEPPER_MODES, "correction")

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(prediction, target) -> []``: what the Trainer hands an objective (``pdekit.training.make_loss``)."""


@dataclass(frozen=True)
class RolloutTraining:
    """How a surrogate is trained (the ``[rollout]`` section of a run's configuration).

    With ``mode="derivative"`` and ``unroll=1`` a derivative model is fitted to finite differences of
    the stored snapshots at the newest input state, over the whole window (``input_steps +
    target_steps`` states); the targets come from the clean states, before any input ``noise``.
    Otherwise the ``Stepper`` is unrolled ``unroll`` steps and the loss is the mean over them.

    Args:
        mode: ``"state"`` (predict the next state), ``"derivative"`` (predict ``du/dt``; Zhou and
            Barati Farimani, "Predicting change, not states") or ``"correction"`` (a coarse solver's
            learned correction: ``pdekit.rollout.correction``, with a run's ``[correction]`` section).
        integrator: derivative mode's integrator, a name in ``INTEGRATORS``.
        substeps: derivative mode's integrator steps per window step.
        derivative_scale: divides the derivative targets, positive; None: set from the data's standard deviation
            when a run starts (``pdekit.runs.train``; 1 where nothing resolves it, as a bare ``RolloutObjective``).
        unroll: steps rolled out per window (the window's ``target_steps`` must be at least this).
        pushforward: only the last unrolled step carries gradients, the earlier ones feed it their
            (detached) predictions: the pushforward trick of Brandstetter, Worrall and Welling,
            "Message passing neural PDE solvers", ICLR 2022.
        teacher_forcing_epochs: a curriculum from teacher forcing to autoregression; in epoch ``e``
            each unrolled step is fed the true state with probability ``max(0, 1 - e / teacher_forcing_epochs)``.
        noise: standard deviation of Gaussian noise added to the input states (in normalised units;
            Sanchez-Gonzalez et al., "Learning to simulate complex physics with graph networks", ICML 2020).
        derivative_target: ``"forward"``, ``"central"``, ``"richardson"`` (4th order, the authors'
            default; ``pdekit.rollout.derivatives``) or ``"auto"``, the highest order the window holds
            (richardson from 5 states, central from 3, else forward).

    A ``config.toml`` of an earlier pdekit version holds ``derivative_scale = 0.0`` for "from the data";
    it reads as None.

    Raises:
        ValueError: naming the setting (``rollout.<name>``) for an unknown mode, integrator or
            derivative target, a count below its minimum, a negative or non-finite noise, or a
            non-positive or non-finite scale.
    """

    mode: str = "state"
    integrator: str = "rk4"
    substeps: int = 1
    derivative_scale: float | None = None
    unroll: int = 1
    pushforward: bool = False
    teacher_forcing_epochs: int = 0
    noise: float = 0.0
    derivative_target: str = "auto"

    def __post_init__(self) -> None:
        if self.derivative_scale == 0:  # config.toml files of earlier pdekit versions wrote 0.0 for "from the data"
            object.__setattr__(self, "derivative_scale", None)
        if self.derivative_target != "auto":
            derivative_target(self.derivative_target)  # raises naming the choices
        if self.mode not in MODES:
            raise ValueError(f"rollout.mode must be one of {list(MODES)}; got {self.mode!r}")
        make_integrator(self.integrator, "rollout.integrator")
        for name, lowest in (("unroll", 1), ("substeps", 1), ("teacher_forcing_epochs", 0)):
            if getattr(self, name) < lowest:
                raise ValueError(f"rollout.{name} must be >= {lowest}; got {getattr(self, name)}")
        if not 0 <= self.noise < float("inf"):  # false for NaN too
            raise ValueError(f"rollout.noise must be non-negative and finite; got {self.noise}")
        if self.derivative_scale is not None and not 0 < self.derivative_scale < float("inf"):
            raise ValueError(
                f"rollout.derivative_scale must be positive and finite (or left out: from the data); got {self.derivative_scale}"
            )

    def stepper(self, model: nn.Module, dt: float, input_steps: int) -> Stepper:
        """Returns the Stepper that advances states with ``model`` as this training defines it.

        Args:
            model: the network, ``model(x [B, input_steps * C, *S], params) -> [B, C, *S]``.
            dt: the window's time step (a state-mode Stepper's ``training_dt``).
            input_steps: the states the model sees.

        Returns:
            The ``Stepper``.

        Raises:
            ValueError: in ``"correction"`` mode, which steps with a ``CorrectedSolver`` instead.
        """
        return Stepper(
            model,
            self.mode,
            integrator=self.integrator,
            substeps=self.substeps,
            training_dt=dt,
            input_steps=input_steps,
            derivative_scale=1.0 if self.derivative_scale is None else self.derivative_scale,
        )

    def derivative(self, history: torch.Tensor, following: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the finite-difference ``du/dt`` at the newest state of ``history``, from ``derivative_target``.

        Args:
            history: ``[B, k, C, *S]``.
            following: ``[B, m, C, *S]``, the states after ``history``.
            dt: the spacing of the states.

        Returns:
            ``[B, C, *S]``.

        Raises:
            ValueError: if the window of ``k + m`` states is too short for the chosen target.
        """
        states = torch.cat([history, following], dim=1)
        name = self.derivative_target
        if name == "auto":
            name = max((t for t in DERIVATIVE_TARGETS.values() if t.points <= states.shape[1]), key=lambda t: t.order).name
        return derivative_target(name)(states, history.shape[1] - 1, dt)


class RolloutObjective:
    """The Trainer objective of ``RolloutTraining`` on windows ``inputs [B, k, C, *S]``, ``targets [B, m, C, *S]``.

    ``loss(network, inputs, targets, params, loss_fn, epoch)`` is the training loss;
    ``prediction(model, inputs, targets, params)`` gives one step's ``(prediction, truth)`` in state
    units for validation, both ``[B, C, *S]``. The model sees the ``k`` states folded into channels,
    which the ``Stepper`` does (the one place where time becomes channels).

    Args:
        training: the settings.
        input_steps: ``k``, the states of a window's inputs.
        dt: the windows' time step.
    """

    def __init__(self, training: RolloutTraining, *, input_steps: int, dt: float):
        self.training, self.input_steps, self.dt = training, input_steps, dt
        self.scale = 1.0 if training.derivative_scale is None else training.derivative_scale

    @staticmethod
    def space_dims(inputs: torch.Tensor) -> int:
        """Returns the number of spatial axes of a batch of windows ``[B, k, C, *S]``.

        Args:
            inputs: ``[B, k, C, *S]``.

        Returns:
            ``inputs.ndim - 3``.
        """
        return inputs.ndim - 3

    def _split(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if inputs.ndim < 4 or inputs.shape[1] != self.input_steps or targets.shape[2:] != inputs.shape[2:]:
            raise ValueError(
                f"rollout training needs windows inputs [B, {self.input_steps}, C, *S] and targets [B, m, C, *S]; got "
                f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
            )
        if targets.shape[1] < self.training.unroll:
            raise ValueError(
                f"rollout.unroll={self.training.unroll} needs windows of at least that many target steps; got {targets.shape[1]}"
            )
        return inputs, targets

    def loss(
        self,
        network: nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        params: torch.Tensor | None,
        loss_fn: Loss,
        epoch: int,
    ) -> torch.Tensor:
        """Returns the training loss of one batch of windows.

        Args:
            network: the model being trained (DDP-wrapped or not).
            inputs: ``[B, k, C, *S]``.
            targets: ``[B, m, C, *S]``, ``m >= unroll``.
            params: ``[B, P]`` or ``None``.
            loss_fn: ``loss_fn(prediction [B, C, *S], truth [B, C, *S]) -> []``.
            epoch: the epoch, counted from 0 (the teacher-forcing curriculum's clock).

        Returns:
            The loss, a 0-d tensor carrying gradients.

        Raises:
            ValueError: if the windows are not ``[B, k, C, *S]`` and ``[B, m >= unroll, C, *S]``.
        """
        t = self.training
        history, truth = self._split(inputs, targets)
        clean = history
        if t.noise > 0:
            history = history + t.noise * torch.randn_like(history)
        if t.mode == "derivative" and t.unroll == 1:
            derivative = t.derivative(clean, truth, self.dt) / self.scale
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

    def prediction(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns one step's ``(prediction, truth)``, both ``[B, C, *S]`` in state units, for validation.

        Args:
            model: the model.
            inputs: ``[B, k, C, *S]``.
            targets: ``[B, m, C, *S]``.
            params: ``[B, P]`` or ``None``.

        Returns:
            ``(prediction, targets[:, 0])``.
        """
        history, truth = self._split(inputs, targets)
        return self.training.stepper(model, self.dt, self.input_steps)(history, self.dt, params), truth[:, 0]
