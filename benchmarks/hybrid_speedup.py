"""Wall time per trajectory: numerical solver, surrogate and hybrid (surrogate + solver steps), at their measured accuracy.

Problem: 2D Navier-Stokes in the FNO paper's setting (nu = 1e-3, forcing 0.1 (sin 2 pi (x + y) +
cos 2 pi (x + y)), Gaussian random initial vorticity) at 64², spun up to t = 2 (the prior's rough
small scales decay first), then 10 time units with outputs every 0.5.

- solver: pdekit's ``NavierStokes2D`` (ETDRK4, CFL 0.5, float32), as a user would run it;
- surrogate: an FNO (modes 12, width 32) trained here on solver data to map the state at t to t + 0.5,
  rolled out with ``rollout``;
- hybrid: ``HybridSolver`` taking 3 surrogate steps, then 1 numerical step (the solver over 0.5).

Errors are relative L2 against a float64 solve of the same members, at T and averaged over the
outputs. Wall times are medians of 3 runs over the same test batch.

    python benchmarks/hybrid_speedup.py [--members 64] [--epochs 12]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import torch
from torch.utils.data import DataLoader, TensorDataset

from pdekit import Grid
from pdekit.data import EpochSampler
from pdekit.models import build_model
from pdekit.rollout import HybridSolver, Stepper, relative_l2_per_step, rollout
from pdekit.solvers import GaussianRandomField, NavierStokes2D, fno_forcing
from pdekit.training import Trainer, TrainerConfig

STEP, OUTPUTS, SOLVER_DT = 0.5, 20, 0.05


def solver(dtype) -> NavierStokes2D:
    grid = Grid((64, 64))
    return NavierStokes2D(
        grid,
        viscosity=1e-3,
        forcing=fno_forcing(grid),
        cfl=0.5,
        device="cpu",
        dtype=dtype,
        initial_field=GaussianRandomField(alpha=2.5, tau=7.0),
    )


def trajectories(members: int, first_seed: int) -> torch.Tensor:
    """Returns float64 trajectories ``[members, OUTPUTS + 1, 1, 64, 64]`` every STEP from the spun-up state at t = 2."""
    s = solver(torch.float64)
    u0 = s.solve(s.initial_condition(members, seeds=range(first_seed, first_seed + members)), [2.0], SOLVER_DT)[:, 0]
    return torch.cat([u0.unsqueeze(1), s.solve(u0, [STEP * (n + 1) for n in range(OUTPUTS)], SOLVER_DT)], dim=1)


def timed(run, repeats: int = 3) -> tuple[torch.Tensor, float]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--test-members", type=int, default=8)
    args = parser.parse_args()
    data = trajectories(args.members, 0).float()
    scale = data.std().item()
    inputs, targets = (data[:, :-1] / scale).flatten(0, 1), (data[:, 1:] / scale).flatten(0, 1)
    torch.manual_seed(0)
    model = build_model("fno", 1, 1, dim=2, modes=12, width=32)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16, sampler=EpochSampler(len(inputs)))
    started = time.perf_counter()
    Trainer(model, TrainerConfig(epochs=args.epochs, learning_rate=2e-3, progress=False), device="cpu").fit(loader)
    print(f"trained on {len(inputs)} pairs in {time.perf_counter() - started:.0f} s", flush=True)
    model.eval()

    class Physical(torch.nn.Module):  # the surrogate in physical units
        def forward(self, x, params=None):
            return scale * model(x / scale)

    stepper = Stepper(Physical(), "state", training_dt=STEP)
    test = trajectories(args.test_members, 10_000)
    reference, u0 = test[:, 1:], test[:, 0].float()
    s32 = solver(torch.float32)
    times = [STEP * (n + 1) for n in range(OUTPUTS)]
    rows = {}
    with torch.no_grad():
        rows["solver (ETDRK4, CFL 0.5)"] = timed(lambda: s32.solve(u0, times, SOLVER_DT))
        rows["surrogate (FNO)"] = timed(lambda: rollout(stepper, u0.unsqueeze(1), OUTPUTS, STEP))
        hybrid = HybridSolver(s32, stepper, surrogate_steps=3, numerical_steps=1, numerical_dt=SOLVER_DT)
        rows["hybrid (3 FNO + 1 solver)"] = timed(lambda: hybrid.solve(u0, times, STEP))
    baseline = rows["solver (ETDRK4, CFL 0.5)"][1]
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}")
    print(f"{args.test_members} test members, T = {STEP * OUTPUTS:g}, medians of 3 runs")
    print("| method | s per trajectory | speed-up vs solver | rel. L2 at T | mean rel. L2 over outputs |\n|---|---|---|---|---|")
    for name, (prediction, seconds) in rows.items():
        errors = relative_l2_per_step(prediction.double(), reference)
        print(f"| {name} | {seconds / args.test_members:.4f} | {baseline / seconds:.2f}x | {errors[-1]:.2e} | {errors.mean():.2e} |")


if __name__ == "__main__":
    main()
