"""The ``pdekit`` command."""

from __future__ import annotations

import argparse
import sys

from pdekit.data import RECIPES, generate, validate


def add_generate_arguments(parser: argparse.ArgumentParser, recipe: str | None = None) -> None:
    """Adds the options of ``pdekit generate`` (and of the scripts in ``datasets/``) to ``parser``."""
    if recipe is None:
        parser.add_argument("recipe", choices=sorted(RECIPES), help="the ensemble recipe (see docs/recipes.md)")
    parser.add_argument("--out", required=True, help="the Zarr store: a directory or any fsspec URL")
    parser.add_argument("--members", type=int, help="ensemble size (default: the recipe's)")
    parser.add_argument("--batch-size", type=int, help="members per solver call (default: the recipe's)")
    parser.add_argument("--seed", type=int, help="base seed of parameters and initial conditions")
    parser.add_argument("--resume", action="store_true", help="finish an interrupted generation into --out")
    parser.add_argument("--scheduler", help="address of a dask.distributed scheduler to run the batches on")
    parser.add_argument("--device", help="torch device of the solver (default: CUDA when present)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if recipe in (None, "fno_navier_stokes"):
        parser.add_argument("--viscosity", type=float, help="fno_navier_stokes only: 1e-3 (default), 1e-4 or 1e-5")


def run_generate(args: argparse.Namespace, recipe_name: str | None = None, **recipe_arguments) -> int:
    name = recipe_name or args.recipe
    if getattr(args, "viscosity", None) is not None:
        if name != "fno_navier_stokes":
            print(f"pdekit generate: --viscosity applies to fno_navier_stokes, not {name}", file=sys.stderr)
            return 2
        recipe_arguments["viscosity"] = args.viscosity
    recipe = RECIPES[name](**recipe_arguments)
    recipe = recipe.with_overrides(members=args.members, batch_size=args.batch_size, seed=args.seed)
    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        summary = generate(recipe, args.out, resume=args.resume, client=client, device=args.device, progress=not args.no_progress)
    except (FileExistsError, ValueError) as error:
        print(f"pdekit generate: {error}", file=sys.stderr)
        return 2
    finally:
        if client is not None:
            client.close()
    print(summary)
    return 0 if summary.failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pdekit", description="Neural surrogates of PDEs: data, training, evaluation.")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="simulate an ensemble into a Zarr store", description="Simulate an ensemble into a Zarr store, crash-safe and resumable.")
    add_generate_arguments(gen)
    info = commands.add_parser("validate", help="check a Zarr ensemble against the schema", description="Check a Zarr ensemble against pdekit's schema.")
    info.add_argument("store")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return run_generate(args)
    report = validate(args.store)
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
