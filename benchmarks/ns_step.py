"""One Navier-Stokes ETDRK4 step: pdekit's NavierStokes2D against its former formulation, side by side in one run.

The former nonlinear term (until 2026-11) built the four fields (u, v, dw/dx, dw/dy) with separate
products and a ``cat``, inverse-transformed them with ``irfftn`` over the whole spectrum and
combined the ETDRK4 stages with plain products; the current one multiplies by one precomputed
multiplier on the kept x modes, transforms along y over those modes only, and combines the stages
with ``addcmul``. Both run on the same states and coefficients; the script prints member-steps/s,
their ratio (medians of interleaved repeats) and the relative difference after 20 steps.

    python benchmarks/ns_step.py [--repeats 5]
    OMP_NUM_THREADS=1 python benchmarks/ns_step.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pdekit import Grid
from pdekit.solvers import NavierStokes2D, fno_forcing


def former_step(solver: NavierStokes2D, v: torch.Tensor, c: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The former ETDRK4 step with the former nonlinear term: the baseline."""

    def nonlinear(v: torch.Tensor) -> torch.Tensor:
        w = solver._dealias * v
        psi = solver._inverse_laplacian * w
        fields = solver.to_physical(torch.cat([solver._iky * psi, -solver._ikx * psi, solver._ikx * w, solver._iky * w], dim=1))
        advection = fields[:, 0:1] * fields[:, 2:3] + fields[:, 1:2] * fields[:, 3:4]
        return -solver._dealias * solver.to_spectral(advection) + solver._forcing_hat

    e, e_half, q, f1, f2, f3 = c
    nv = nonlinear(v)
    v_half = e_half * v
    a = v_half + q * nv
    na = nonlinear(a)
    b = v_half + q * na
    nb = nonlinear(b)
    c_stage = e_half * a + q * (2 * nb - nv)
    nc = nonlinear(c_stage)
    return e * v + f1 * nv + 2 * f2 * (na + nb) + f3 * nc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"# ns_step, {torch.get_num_threads()} threads, torch {torch.__version__}, float32, medians of {args.repeats} interleaved repeats"
    )
    print("| grid | batch | former member-steps/s | pdekit member-steps/s | ratio | rel. difference after 20 steps |")
    print("|---|---|---|---|---|---|")
    for n, batch in ((64, 32), (128, 8), (256, 8)):
        grid = Grid((n, n))
        solver = NavierStokes2D(grid, 1e-3, forcing=fno_forcing(grid), device="cpu", dtype=torch.float32)
        v0 = solver.to_spectral(solver.initial_condition(batch, torch.Generator().manual_seed(0)))
        c = solver._coefficients(2e-3)
        former, current = v0, v0
        for _ in range(20):
            former, current = former_step(solver, former, c), solver.scheme.step(current, c, solver.nonlinear_term)
        a, b = solver.to_physical(former), solver.to_physical(current)
        difference = ((a - b).norm() / a.norm()).item()
        seconds = {"former": [], "pdekit": []}
        routes = {
            "former": lambda solver=solver, v0=v0, c=c: former_step(solver, v0, c),
            "pdekit": lambda solver=solver, v0=v0, c=c: solver.scheme.step(v0, c, solver.nonlinear_term),
        }
        for route in routes.values():
            route()  # warm-up
        for _ in range(args.repeats):
            for name, route in routes.items():
                start = time.perf_counter()
                for _ in range(5):
                    route()
                seconds[name].append((time.perf_counter() - start) / 5)
        old, new = statistics.median(seconds["former"]), statistics.median(seconds["pdekit"])
        print(f"| {n}² | {batch} | {batch / old:,.0f} | {batch / new:,.0f} | {old / new:.2f}x | {difference:.1e} |")


if __name__ == "__main__":
    main()
