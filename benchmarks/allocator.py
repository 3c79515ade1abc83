"""The host allocator: default glibc malloc against ``pdekit.allocator.retain_freed_memory()``, side by side.

Each case runs in a fresh subprocess per setting (the setting is process-wide), interleaved
(default, retained, default, retained, ...), and the script prints the median time per member and
the ratio. Cases: an FNO forward at 256² (inference), an FNO training step at 128² (forward, backward,
AdamW), and a Navier-Stokes ETDRK4 solve at 256².

    python benchmarks/allocator.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASE = r"""
import sys, time, statistics, torch
if sys.argv[1] == "retained":
    from pdekit.allocator import retain_freed_memory
    assert retain_freed_memory()
case = sys.argv[2]
torch.manual_seed(0)
if case.startswith("fno"):
    from neuralop.models import FNO
    n, batch = (256, 4) if case == "fno_forward_256" else (128, 8)
    model = FNO(n_modes=(12, 12), hidden_channels=32, in_channels=1, out_channels=1)
    x, y = torch.randn(batch, 1, n, n), torch.randn(batch, 1, n, n)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    def run():
        if case == "fno_forward_256":
            with torch.inference_mode():
                model(x)
        else:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
else:
    from pdekit import Grid
    from pdekit.solvers import NavierStokes2D, fno_forcing
    grid, batch = Grid((256, 256)), 4
    solver = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), device="cpu")
    u0 = solver.initial_condition(batch, torch.Generator().manual_seed(0))
    def run():
        solver.solve(u0, [0.02], dt=0.002)
run()
times = []
for _ in range(5):
    start = time.perf_counter(); run(); times.append((time.perf_counter() - start) / batch)
print(statistics.median(times))
"""
CASES = ("fno_forward_256", "fno_training_step_128", "navier_stokes_solve_256")


def seconds(setting: str, case: str) -> float:
    out = subprocess.run([sys.executable, "-c", CASE, setting, case], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# allocator, medians of {args.repeats} interleaved subprocess runs (each the median of 5 calls)")
    print("| case | default glibc (ms / member) | retained (ms / member) | speed-up |")
    print("|---|---|---|---|")
    for case in CASES:
        runs = {"default": [], "retained": []}
        for _ in range(args.repeats):
            for setting in runs:
                runs[setting].append(seconds(setting, case))
        default, retained = statistics.median(runs["default"]), statistics.median(runs["retained"])
        print(f"| {case} | {1e3 * default:.1f} | {1e3 * retained:.1f} | {default / retained:.2f}x |")


if __name__ == "__main__":
    main()
