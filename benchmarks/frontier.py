"""The cost-accuracy frontier of 2D Navier-Stokes: solver grids against surrogates, hybrids and corrected solvers.

McGreivy and Hakim (Nature Machine Intelligence 2024): a surrogate's speed-up counts only against
the cheapest solver setting of equal accuracy. This script runs ``pdekit.runs.frontier`` on the FNO
paper's nu = 1e-4 flow (``--problem navier_stokes``) or on Kolmogorov flow at one Reynolds number
(``--problem kolmogorov --reynolds 1000``): the float64 reference at ``--reference-shape`` (256²),
pdekit's solver (ETDRK4, CFL 0.5, float32) at that grid (unless ``--no-reference-route``) and at
every ``--coarse`` grid, and every trained run given, all from the reference's state at ``--start-time`` of the same held-out members,
over ``--horizon`` time units, errors measured on the runs' stored grid (or ``--measure-shape``);
the table, JSON and the Pareto plot go to ``--out``.

    python benchmarks/frontier.py --surrogate RUN_DIR ... --hybrid RUN_DIR:3:1 ... --correction RUN_DIR ...
    python benchmarks/frontier.py --smoke      # every route kind at a tiny size, under a minute on 2 cores

Runs are ``pdekit train`` directories on a store of ``pdekit generate fno_navier_stokes --viscosity 1e-4``
(solved at 256², stored at 64²; ``pdekit.io.coarsen.coarsen_store`` makes the 32² copy of the same
solves) or ``pdekit generate kolmogorov_flow --reynolds 1000``. A surrogate with ``input_steps = k``
needs ``--start-time >= k - 1``. ``--correction`` takes a run whose ``load_run`` returns a
``CorrectedSolver`` (``pdekit train --mode correction``). Routes on different grids need
``--measure-shape``. The commands of the recorded runs are in ``benchmarks/RESULTS.md``.

``--smoke`` generates a 32² store (stored at 16²), trains a tiny FNO surrogate with ``pdekit.runs.train``
(a real run directory, also used as a hybrid) and a tiny correction of the 16² solver with
``CorrectionObjective``, and draws the frontier over t = 1 .. 3 with solvers at 32², 16² and 8².
Its numbers say nothing about the methods; it checks the pipeline end to end.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import torch

from pdekit.arguments import correlation_float
from pdekit.data.recipes import fno_navier_stokes, named_recipe
from pdekit.frontier_cli import hybrid_spec
from pdekit.rollout.evaluate import CORRELATION_THRESHOLD
from pdekit.runs.frontier import CorrectionRoute, frontier, hybrid_from_run, route_from_run
from pdekit.viz import plot_frontier

PROBLEMS = {"navier_stokes": ("fno_navier_stokes", "viscosity", 1e-4), "kolmogorov": ("kolmogorov_flow", "reynolds", 1000.0)}


def smoke_routes(folder: Path) -> tuple[list, object]:
    """Returns the routes of a tiny surrogate run, its hybrid, and a tiny corrected solver, all trained here, and the recipe they share."""
    from torch.utils.data import DataLoader

    from pdekit.data import EpochSampler, Windows, compute_statistics, generate
    from pdekit.data.schema import json_attribute, names
    from pdekit.data.store import open_store
    from pdekit.models import build_model
    from pdekit.rollout.correction import CorrectionObjective, CorrectionTraining
    from pdekit.runs import ExperimentConfig, train
    from pdekit.training import Trainer, TrainerConfig

    recipe = replace(fno_navier_stokes(1e-4), shape=(32, 32), stored_shape=(16, 16), times=(1.0, 2.0, 3.0, 4.0), members=10, batch_size=10)
    store = str(folder / "ns.zarr")
    generate(recipe, store, progress=False)
    statistics = compute_statistics(store)
    config = ExperimentConfig.from_dict(
        {
            "data": {"store": store, "batch_size": 8, "validation_fraction": 0.2},
            "model": {"name": "fno", "settings": {"modes": 6, "width": 8, "layers": 2}},
            "trainer": {"epochs": 2, "progress": False},
        }
    )
    run = folder / "surrogate"
    train(config, run, device="cpu")

    objective = CorrectionObjective.from_store(store, CorrectionTraining(unroll=2), statistics=statistics)
    windows = Windows(store, 1, 2, members=range(8), normalize=statistics)
    model = build_model("fno", 1, 1, dim=2, n_params=1, modes=6, width=8, layers=2)
    Trainer(model, TrainerConfig(epochs=1, progress=False), device="cpu", objective=objective).fit(
        DataLoader(windows, batch_size=8, sampler=EpochSampler(len(windows)))
    )
    group = open_store(store)
    corrected = CorrectionRoute(
        "correction (16x16 solver + FNO)",
        objective.corrected_solver(model.eval()),
        tuple(names(group.attrs, "parameter_names")),
        json_attribute(group.attrs, "recipe"),
    )
    return [
        route_from_run(run, "cpu", "surrogate (FNO)"),
        hybrid_from_run(run, 1, 1, "cpu", "hybrid (1 FNO + 1 solver)"),
        corrected,
    ], recipe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every route kind at a tiny size (under a minute)")
    parser.add_argument("--surrogate", nargs="+", default=[], metavar="RUN_DIR", help="surrogate runs")
    parser.add_argument(
        "--hybrid", type=hybrid_spec, action="append", default=[], metavar="RUN_DIR:S:N", help="a surrogate run in the solver's loop"
    )
    parser.add_argument("--correction", nargs="+", default=[], metavar="RUN_DIR", help="corrected-solver runs")
    parser.add_argument(
        "--problem",
        choices=("navier_stokes", "kolmogorov"),
        default="navier_stokes",
        help="the FNO paper's nu=1e-4 flow, or Kolmogorov flow at --reynolds",
    )
    parser.add_argument("--viscosity", type=float, default=None, help="navier_stokes: the FNO paper's 1e-3, 1e-4 (default) or 1e-5")
    parser.add_argument("--reynolds", type=float, default=None, help="kolmogorov: Re = 1/nu of every member (default 1000)")
    parser.add_argument("--reference-shape", type=int, default=256)
    parser.add_argument("--measure-shape", type=int, default=None, help="the grid errors are measured on (default: the runs')")
    parser.add_argument("--coarse", type=int, nargs="+", default=[128, 64, 32], help="coarse solver grids (N for NxN)")
    parser.add_argument(
        "--start-time",
        type=float,
        default=10.0,
        help="every route starts from the reference here (the FNO paper's nu=1e-4 rollouts start at t=10)",
    )
    parser.add_argument("--horizon", type=float, default=10.0, help="time units from --start-time to the last comparison")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default="frontier-ns1e-4")
    parser.add_argument(
        "--correlation-threshold",
        type=correlation_float,
        default=CORRELATION_THRESHOLD,
        help="Kochkov et al. use 0.95",
    )
    parser.add_argument("--no-reference-route", action="store_true", help="do not time the solver on the reference grid")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:
            routes, recipe = smoke_routes(Path(scratch))
            reference, coarse, start, horizon, members, repeats, device = (32, 32), [(16, 16), (8, 8)], 1.0, 2.0, 2, 1, "cpu"
        else:
            name, option, default = PROBLEMS[args.problem]
            given = {k: getattr(args, k) for k in ("viscosity", "reynolds") if getattr(args, k) is not None}
            recipe = named_recipe(name, **{option: default, **given})  # an option of the other problem is refused by name
            routes = [*args.surrogate, *(hybrid_from_run(r, s, n, args.device) for r, s, n in args.hybrid), *args.correction]
            reference, coarse = (args.reference_shape,) * 2, [(n, n) for n in args.coarse]
            start, horizon, members, repeats, device = args.start_time, args.horizon, args.members, args.repeats, args.device
        measure = None if args.smoke or args.measure_shape is None else (args.measure_shape,) * 2
        result = frontier(
            recipe,
            reference,
            horizon,
            coarse_shapes=coarse,
            runs=routes,
            members=members,
            device=device,
            start_time=start,
            repeats=repeats,
            measure_shape=measure,
            correlation_threshold=args.correlation_threshold,
            reference_route=not args.no_reference_route,
            progress=lambda name: print(f"running {name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True),
        )
    files = [*result.save(args.out), plot_frontier(result, Path(args.out) / "frontier.png")]
    print(
        f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}, "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print(result.table())
    for path in files:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
