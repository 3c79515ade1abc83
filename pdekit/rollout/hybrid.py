"""A surrogate inside a numerical solver's time loop, with the solver's interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from pdekit.solvers.base import Solver

Monitor = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def energy_drift(before: torch.Tensor, after: torch.Tensor, dt: float) -> torch.Tensor:
    """Returns ``|E(after) - E(before)| / E(before)`` per member, ``E = mean(u^2)``: ``[B]``.

    A ``HybridSolver`` monitor. A zero ``E(before)`` is clamped to the smallest normal number, so any
    energy appearing from nothing scores far above every threshold.

    Args:
        before: the state before the step, ``[B, C, *S]``.
        after: the proposed state, ``[B, C, *S]``.
        dt: the step (unused: the drift is per step; the monitor interface passes it).

    Returns:
        ``[B]``.
    """
    e0, e1 = before.flatten(1).square().mean(1), after.flatten(1).square().mean(1)
    return (e1 - e0).abs() / e0.clamp_min(torch.finfo(e0.dtype).tiny)


def pde_residual(solver: Solver) -> Monitor:
    """Returns a monitor of the step's PDE residual per member: ``||(u1 - u0)/dt - (f(u0) + f(u1))/2|| / ||f(u0)||``.

    ``f`` is the solver's exact semi-discrete right-hand side: a step that the PDE does not explain
    (to the trapezoidal rule's accuracy) scores high. A zero ``f(u0)`` is clamped to the smallest
    normal number, so a state that should not move but did scores far above every threshold.

    Args:
        solver: a pdekit solver with ``time_derivative(u [B, C, *S]) -> [B, C, *S]``.

    Returns:
        ``monitor(before [B, C, *S], after [B, C, *S], dt) -> [B]``.
    """

    # The hybrid scores only finite states (it swaps a non-finite proposal for the current state), so a
    # pdekit solver's unchecked right-hand side serves: no read-back per step for the finiteness check.
    rhs = getattr(solver, "right_hand_side", solver.time_derivative)

    def residual(before: torch.Tensor, after: torch.Tensor, dt: float) -> torch.Tensor:
        f0, f1 = rhs(before), rhs(after)
        r = ((after - before) / dt - 0.5 * (f0 + f1)).flatten(1).norm(dim=1)
        return r / f0.flatten(1).norm(dim=1).clamp_min(torch.finfo(f0.dtype).tiny)

    return residual


class HybridSolver:
    """Has the Solver interface; takes ``surrogate_steps`` surrogate steps, then ``numerical_steps`` solver steps, and repeats.

    With a ``monitor`` and ``threshold``, every surrogate step is checked per member, and members
    whose score exceeds ``threshold`` take the numerical step instead (``fallbacks`` counts them;
    this costs one device synchronisation per step). ``surrogate_steps=0`` is the numerical solver
    exactly. ``params [B, P]`` are the surrogate's per-member inputs (e.g. the viscosity).
    A surrogate usually steps far beyond the solver's stable step: with ``numerical_dt`` a numerical
    step of ``dt`` is ``solver.solve`` over ``dt`` with that (CFL-limited, if the solver has ``cfl``)
    step; without it, one ``solver.step(u, dt)``.

    Code that drives a pdekit solver drives this unchanged: ``step``, ``solve``, ``time_derivative``
    and ``initial_condition`` behave as the solver's.

    Args:
        solver: the numerical solver (``step``, ``solve``, ``time_derivative``, ``initial_condition``).
        stepper: the surrogate, ``stepper(history [B, 1, C, *S], dt, params) -> [B, C, *S]`` (a ``Stepper``
            with ``input_steps=1``, or any module called so).
        surrogate_steps: surrogate steps per cycle (0: the solver alone).
        numerical_steps: solver steps per cycle.
        params: ``[B, P]``, the surrogate's per-member inputs, or ``None``.
        monitor: ``monitor(before, after, dt) -> [B]`` scoring each surrogate step (``energy_drift``,
            ``pde_residual(solver)``), or ``None``.
        threshold: the score above which a member takes the numerical step instead.
        numerical_dt: the solver's own step inside a numerical step of ``dt`` (``None``: one ``solver.step``).

    Raises:
        ValueError: if ``stepper.input_steps != 1``, the step counts are negative or both 0, or only
            one of ``monitor`` and ``threshold`` is given.
    """

    def __init__(
        self,
        solver: Solver,
        stepper: nn.Module,
        *,
        surrogate_steps: int = 4,
        numerical_steps: int = 1,
        params: torch.Tensor | None = None,
        monitor: Monitor | None = None,
        threshold: float | None = None,
        numerical_dt: float | None = None,
    ):
        if getattr(stepper, "input_steps", 1) != 1:
            raise ValueError("HybridSolver needs a Stepper with input_steps=1: the solver's step sees one state")
        if surrogate_steps < 0 or numerical_steps < 0 or surrogate_steps + numerical_steps == 0:
            raise ValueError(f"surrogate_steps and numerical_steps must be >= 0 and not both 0; got {surrogate_steps}, {numerical_steps}")
        if (monitor is None) != (threshold is None):
            raise ValueError("give both monitor and threshold, or neither")
        self.solver, self.stepper, self.params = solver, stepper, params
        self.surrogate_steps, self.numerical_steps = surrogate_steps, numerical_steps
        self.monitor, self.threshold, self.numerical_dt = monitor, threshold, numerical_dt
        self.steps_taken = 0
        self.fallbacks = 0
        # The surrogate runs in its own precision (e.g. float32 beside a float64 solver).
        floating = [p.dtype for p in stepper.parameters() if p.is_floating_point()]
        self.surrogate_dtype = floating[0] if floating else None

    def __getattr__(self, name: str) -> Any:  # grid, device, dtype, channels, ... are the solver's
        return getattr(self.__dict__["solver"], name)

    def initial_condition(
        self, batch: int, generator: torch.Generator | None = None, *, seeds: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Returns the solver's initial condition ``[batch, C, *S]`` (``solver.initial_condition``).

        Args:
            batch: the number of members.
            generator: the random generator (``None``: torch's global one).
            seeds: one seed per member, so that member ``i`` is the same in any batch split.

        Returns:
            ``[batch, C, *S]``.
        """
        return self.solver.initial_condition(batch, generator, seeds=seeds)

    def time_derivative(self, u: torch.Tensor) -> torch.Tensor:
        """Returns the solver's ``du/dt`` at ``u``.

        Args:
            u: ``[B, C, *S]``.

        Returns:
            ``[B, C, *S]``.
        """
        return self.solver.time_derivative(u)

    def reset(self) -> None:
        """Starts the surrogate/numerical cycle afresh (``solve`` does this itself)."""
        self.steps_taken = 0

    def numerical_step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns ``u`` advanced by ``dt`` by the numerical solver (in steps of ``numerical_dt`` if set).

        Args:
            u: ``[B, C, *S]``.
            dt: the interval.

        Returns:
            ``[B, C, *S]``.
        """
        if self.numerical_dt is None:
            return self.solver.step(u, dt)
        return self.solver.solve(u, [dt], self.numerical_dt)[:, 0]

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns ``u`` advanced by ``dt``: by the surrogate or the solver, as the cycle has it.

        Args:
            u: ``[B, C, *S]`` in the solver's dtype.
            dt: the step.

        Returns:
            ``[B, C, *S]`` in ``u``'s dtype; members the monitor rejects (or whose proposal is not
            finite) hold the numerical step.
        """
        cycle = self.surrogate_steps + self.numerical_steps
        surrogate = self.steps_taken % cycle < self.surrogate_steps
        self.steps_taken += 1
        if not surrogate:
            return self.numerical_step(u, dt)
        with torch.no_grad():
            dtype = self.surrogate_dtype or u.dtype
            proposal = self.stepper(u.unsqueeze(1).to(dtype), dt, self.params).to(u.dtype)
        if self.monitor is None or self.threshold is None:  # given together or not at all (the constructor)
            return proposal
        # A non-finite proposal is rejected outright; the monitor scores a finite stand-in for it,
        # so it never sees NaN (a solver's time_derivative refuses non-finite states).
        finite = torch.isfinite(proposal).flatten(1).all(1)
        scored = torch.where(finite.view(-1, *[1] * (u.ndim - 1)), proposal, u)
        rejected = ~finite | (self.monitor(u, scored, dt) > self.threshold)  # [B]
        count = int(rejected.sum())  # the one read-back of the step: whether (and how often) the solver must step
        if count == 0:
            return proposal
        self.fallbacks += count
        corrected = self.numerical_step(u, dt)
        return torch.where(rejected.view(-1, *[1] * (u.ndim - 1)), corrected, proposal)

    def solve(self, u0: torch.Tensor, t_out: Sequence[float] | torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the states at ``t_out`` (multiples of ``dt``): ``[B, T, C, *S]``, as ``solver.solve`` does.

        The cycle starts afresh (``reset``) at ``u0``.

        Args:
            u0: ``[B, C, *S]``.
            t_out: increasing output times, multiples of ``dt`` from ``t = 0``.
            dt: the step.

        Returns:
            ``[B, T, C, *S]``, ``T = len(t_out)``.

        Raises:
            ValueError: if the times are not increasing multiples of ``dt``.
        """
        if self.surrogate_steps == 0:  # the numerical solver alone, at the step a numerical step takes
            return self.solver.solve(u0, t_out, dt if self.numerical_dt is None else self.numerical_dt)
        times = torch.as_tensor(t_out, dtype=torch.float64).tolist()
        indices = [round(t / dt) for t in times]
        if (
            any(abs(n * dt - t) > 1e-9 * max(1.0, abs(t)) for n, t in zip(indices, times, strict=True))
            or indices != sorted(indices)
            or indices[0] < 0
        ):
            raise ValueError(f"HybridSolver.solve needs increasing output times on multiples of dt={dt}; got {times[:5]}...")
        self.reset()
        out = torch.empty(u0.shape[0], len(indices), *u0.shape[1:], dtype=u0.dtype, device=u0.device)
        u, n = u0, 0
        for j, target in enumerate(indices):
            while n < target:
                u = self.step(u, dt)
                n += 1
            out[:, j] = u
        return out
