"""Swap a numerical solver for a surrogate inside your own time loop, in one line.

Trains a small derivative-predicting FNO on 1D Burgers data from pdekit's solver (under a minute on
a CPU), then runs the same user loop twice: with the solver, and with a ``HybridSolver``
that takes surrogate steps and falls back to the solver whenever the PDE residual of a step is
too large.

    python examples/hybrid_solver_in_your_loop.py [--steps 300]
"""

import argparse
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, TensorDataset

from pdekit import Grid
from pdekit.models import build_model
from pdekit.rollout import HybridSolver, Stepper, pde_residual
from pdekit.solvers import Burgers, GaussianRandomField, Solver
from pdekit.training import Trainer, TrainerConfig

DT = 0.01


def train_surrogate(solver: Burgers, steps: int) -> Stepper:
    """Fits an FNO to the solver's exact du/dt on states from solver trajectories."""
    u0 = solver.initial_condition(32, seeds=range(32))
    states = solver.solve(u0, [5 * DT * n for n in range(1, 21)], DT).flatten(0, 1)
    derivatives = solver.time_derivative(states)
    scale = derivatives.std().item()
    model = build_model("fno", 1, 1, dim=1, modes=32, width=32)
    loader = DataLoader(TensorDataset(states.float(), (derivatives / scale).float()), batch_size=64, shuffle=True)
    Trainer(model, TrainerConfig(epochs=max(1, steps // len(loader)), learning_rate=2e-3, progress=False), device="cpu").fit(loader)
    return Stepper(model.eval(), "derivative", integrator="rk4", derivative_scale=scale)


def my_time_loop(solver: Solver, u: torch.Tensor, n_steps: int) -> torch.Tensor:
    """A user's own loop: it only knows the Solver interface (``step``)."""
    for _ in range(n_steps):
        u = solver.step(u, DT)
    return u


def main(argv: Sequence[str] | None = None) -> tuple[float, int]:
    """Runs the loop with the solver and with the hybrid; returns the hybrid's mean relative L2 against the solver after 100 steps, and
    the member-steps that fell back to the solver."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="optimiser steps for the surrogate")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    solver = Burgers(
        Grid((64,)), 0.02, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.5, tau=5.0, sigma=25.0)
    )
    stepper = train_surrogate(solver, args.steps)
    u0 = solver.initial_condition(8, seeds=range(1000, 1008))

    reference = my_time_loop(solver, u0, 100)
    solver_in_my_loop = HybridSolver(
        solver, stepper, surrogate_steps=4, numerical_steps=1, monitor=pde_residual(solver), threshold=0.2
    )  # the one-line swap
    hybrid = my_time_loop(solver_in_my_loop, u0, 100)

    error = ((hybrid - reference).flatten(1).norm(dim=1) / reference.flatten(1).norm(dim=1)).mean().item()
    print(f"hybrid vs solver after 100 steps: relative L2 {error:.3e}; {solver_in_my_loop.fallbacks} member-steps fell back to the solver")
    return error, solver_in_my_loop.fallbacks


if __name__ == "__main__":
    main()
