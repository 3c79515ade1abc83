"""A surrogate inside a numerical solver's time loop, with the solver's interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from pdekit.rollout.steppers import Stepper

Monitor = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def energy_drift(before: torch.Tensor, after: torch.Tensor, dt: float) -> torch.Tensor:
    """Returns ``|E(after) - E(before)| / E(before)`` per member, ``E = mean(u^2)``: ``[B]``."""
    e0, e1 = before.flatten(1).square().mean(1), after.flatten(1).square().mean(1)
    return (e1 - e0).abs() / e0.clamp_min(torch.finfo(e0.dtype).tiny)


def pde_residual(solver) -> Monitor:
    """Returns a monitor of the step's PDE residual per member: ``||(u1 - u0)/dt - (f(u0) + f(u1))/2|| / ||f(u0)||``.

    ``f`` is the solver's exact semi-discrete right-hand side: a step that the PDE does not explain
    (to the trapezoidal rule's accuracy) scores high.
    """

    def residual(before: torch.Tensor, after: torch.Tensor, dt: float) -> torch.Tensor:
        f0, f1 = solver.time_derivative(before), solver.time_derivative(after)
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
    """

    def __init__(
        self,
        solver,
        stepper: Stepper,
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

    def __getattr__(self, name):  # grid, device, dtype, channels, ... are the solver's
        return getattr(self.__dict__["solver"], name)

    def initial_condition(self, batch: int, generator=None, *, seeds: Sequence[int] | None = None) -> torch.Tensor:
        return self.solver.initial_condition(batch, generator, seeds=seeds)

    def time_derivative(self, u: torch.Tensor) -> torch.Tensor:
        return self.solver.time_derivative(u)

    def reset(self) -> None:
        """Starts the surrogate/numerical cycle afresh (``solve`` does this itself)."""
        self.steps_taken = 0

    def numerical_step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns ``u`` advanced by ``dt`` by the numerical solver."""
        if self.numerical_dt is None:
            return self.solver.step(u, dt)
        return self.solver.solve(u, [dt], self.numerical_dt)[:, 0]

    def step(self, u: torch.Tensor, dt: float) -> torch.Tensor:
        """Returns ``u`` advanced by ``dt``: by the surrogate or the solver, as the cycle has it."""
        cycle = self.surrogate_steps + self.numerical_steps
        surrogate = self.steps_taken % cycle < self.surrogate_steps
        self.steps_taken += 1
        if not surrogate:
            return self.numerical_step(u, dt)
        with torch.no_grad():
            dtype = self.surrogate_dtype or u.dtype
            proposal = self.stepper(u.unsqueeze(1).to(dtype), dt, self.params).to(u.dtype)
        if self.monitor is None:
            return proposal
        # A non-finite proposal is rejected outright; the monitor scores a finite stand-in for it,
        # so it never sees NaN (a solver's time_derivative refuses non-finite states).
        finite = torch.isfinite(proposal).flatten(1).all(1)
        scored = torch.where(finite.view(-1, *[1] * (u.ndim - 1)), proposal, u)
        rejected = ~finite | (self.monitor(u, scored, dt) > self.threshold)  # [B]
        if not bool(rejected.any()):
            return proposal
        self.fallbacks += int(rejected.sum())
        corrected = self.numerical_step(u, dt)
        return torch.where(rejected.view(-1, *[1] * (u.ndim - 1)), corrected, proposal)

    def solve(self, u0: torch.Tensor, t_out: Sequence[float] | torch.Tensor, dt: float) -> torch.Tensor:
        """Returns the states at ``t_out`` (multiples of ``dt``): ``[B, T, C, *S]``, as ``solver.solve`` does."""
        if self.surrogate_steps == 0:
            return self.solver.solve(u0, t_out, dt)
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
