"""``pdekit frontier``: the cost-accuracy frontier of a recipe's solver settings and trained runs, as a table, JSON and a plot."""

from __future__ import annotations

import argparse
import logging

from pdekit.arguments import correlation_float, device_type, non_negative_float, positive_float, positive_int, writable_directory

log = logging.getLogger(__name__)


def grid_shape(text: str) -> tuple[int, ...]:
    """An argparse type: ``64x64`` (or ``64``, one size for every axis) as a tuple of sizes >= 2."""
    try:
        shape = tuple(int(n) for n in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 2:
        raise argparse.ArgumentTypeError(f"expected a grid such as 64x64 (or 64); got {text!r}")
    return shape


def hybrid_spec(text: str) -> tuple[str, int, int]:
    """An argparse type: ``RUN_DIR:S:N`` (S surrogate steps, then N solver steps) as ``(run_dir, S, N)``."""
    run, _, rest = text.rpartition(":")
    run, _, first = run.rpartition(":")
    try:
        surrogate, numerical = int(first), int(rest)
    except ValueError:
        surrogate = numerical = -1
    if not run or surrogate < 0 or numerical < 0 or surrogate + numerical == 0:
        raise argparse.ArgumentTypeError(f"expected RUN_DIR:S:N (surrogate steps, then solver steps), e.g. runs/fno:3:1; got {text!r}")
    return run, surrogate, numerical


def _expand(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    return shape * ndim if len(shape) == 1 else shape


def run_frontier(args: argparse.Namespace) -> int:
    from pdekit.data.recipes import RECIPE_OPTIONS, named_recipe
    from pdekit.runs.frontier import frontier, hybrid_from_run

    recipe = named_recipe(args.recipe, **{option: getattr(args, option, None) for option in RECIPE_OPTIONS})
    writable_directory(args.out, "--out")  # before the routes run: a bad path must not lose them
    if args.no_reference_route and not args.coarse_shapes:
        raise ValueError("--no-reference-route leaves no solver to compare with: give --coarse-shapes")
    ndim = len(recipe.shape)
    runs = [*args.runs, *(hybrid_from_run(run, s, n, device=args.device) for run, s, n in args.hybrid)]
    result = frontier(
        recipe,
        _expand(args.reference_shape, ndim),
        args.horizon,
        coarse_shapes=[_expand(s, ndim) for s in args.coarse_shapes],
        dts=args.dts,
        cfls=args.cfls,
        runs=runs,
        members=args.members,
        device=args.device,
        start_time=args.start_time,
        measure_shape=_expand(args.measure_shape, ndim) if args.measure_shape else None,
        repeats=args.repeats,
        correlation_threshold=args.correlation_threshold,
        reference_route=not args.no_reference_route,
        progress=None if args.no_progress else (lambda name: log.info("running %s", name)),
    )
    from pdekit.viz import plot_frontier

    files = [*result.save(args.out), plot_frontier(result, f"{args.out}/frontier.png", error=args.error)]
    print(result.table())
    for path in files:
        print(f"wrote {path}")
    return 0


def add_frontier_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``pdekit frontier`` to ``subparsers`` (the ``pdekit`` parser's) with its handler as ``func``; returns its parser."""
    from pdekit.data import RECIPES
    from pdekit.rollout.evaluate import CORRELATION_THRESHOLD

    parser = subparsers.add_parser(
        "frontier",
        help="error against cost of solver settings, surrogates, hybrids and corrected solvers",
        description="Run the recipe's solver at the reference grid (unless --no-reference-route) and at coarser grids (and time "
        "steps), and every trained run "
        "named, from the same held-out initial states on this device; report relative L2 at T and over the horizon, correlation "
        "time and wall seconds per member per time unit (batched, warm, inference mode), the Pareto front, and each learned "
        "route's speed-up over the solver of equal accuracy, interpolated between the solver settings that bracket it, by mean error, "
        "error at T and correlation time (none where a route has no skill: a relative L2 of 1 or more). "
        "Writes OUT/frontier.json, frontier.md, frontier.png.",
    )
    parser.add_argument("recipe", choices=sorted(RECIPES), help="the physics (its parameters, forcing and output step)")
    parser.add_argument(
        "--reference-shape", type=grid_shape, required=True, metavar="NxN", help="the reference grid, solved once in float64 (e.g. 256x256)"
    )
    parser.add_argument(
        "--coarse-shapes", type=grid_shape, nargs="+", default=[], metavar="NxN", help="coarser solver grids, e.g. 32x32 64x64 128x128"
    )
    parser.add_argument(
        "--horizon",
        type=positive_float,
        required=True,
        help="simulated time compared after --start-time (a multiple of the output step)",
    )
    parser.add_argument(
        "--start-time", type=non_negative_float, default=0.0, help="start every route from the reference at this time (e.g. past a spin-up)"
    )
    parser.add_argument("--dts", type=positive_float, nargs="+", help="solver largest time steps to try (default: the recipe's)")
    parser.add_argument("--cfls", type=non_negative_float, nargs="+", help="solver CFL limits, 0 for fixed steps (default: the recipe's)")
    parser.add_argument(
        "--runs", nargs="+", default=[], metavar="RUN_DIR", help="trained runs (surrogates, corrected solvers) to put on the plot"
    )
    parser.add_argument(
        "--hybrid",
        type=hybrid_spec,
        action="append",
        default=[],
        metavar="RUN_DIR:S:N",
        help="a surrogate run in the solver's loop: S surrogate steps, then N solver steps (repeatable)",
    )
    parser.add_argument("--members", type=positive_int, default=8, help="held-out members, solved in one batch (default 8)")
    parser.add_argument(
        "--measure-shape",
        type=grid_shape,
        metavar="NxN",
        help="grid the errors are measured on (default: the runs' stored grid, else the recipe's)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=3, help="timed calls per route after the warm-up; the median is reported (default 3)"
    )
    parser.add_argument(
        "--correlation-threshold",
        type=correlation_float,
        default=CORRELATION_THRESHOLD,
        help="correlation below which a route counts as decorrelated (default %(default)s, PDE-Refiner's; Kochkov et al. use 0.95)",
    )
    parser.add_argument(
        "--no-reference-route",
        action="store_true",
        help="do not also time the solver on the reference grid (in float32): the dearest row, often half the run",
    )
    parser.add_argument("--error", choices=["mean_error", "error_at_T"], default="mean_error", help="the error on the plot's vertical axis")
    parser.add_argument("--viscosity", type=positive_float, help="fno_navier_stokes only: 1e-3 (default), 1e-4 or 1e-5")
    parser.add_argument(
        "--reynolds", type=positive_float, nargs="+", metavar="RE", help="kolmogorov_flow only: one Reynolds number, or LOW HIGH"
    )
    parser.add_argument("--device", type=device_type, help="torch device (default: CUDA when present)")
    parser.add_argument("--out", default="frontier", help="folder for frontier.json, frontier.md and frontier.png (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines (they show with -v)")
    parser.set_defaults(func=run_frontier)
    return parser
