"""The ``pdekit export`` and ``pdekit import`` commands: parsers and handlers (``pdekit.cli`` adds them to its subcommands).

Each ``add_*_parser`` sets ``func`` to its handler; a handler returns 0, and wrong input (a missing
file, an existing output, data a format or a store cannot hold) raises the ValueError or OSError that
``pdekit.cli.main`` turns into one line on standard error and exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

import zarr

from pdekit.data.schema import BOUNDARY_CONDITIONS
from pdekit.io.formats import FORMATS


def add_export_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``pdekit export`` to ``subparsers`` and returns its parser."""
    parser = subparsers.add_parser(
        "export",
        help="write a Zarr ensemble as The Well's or PDEBench's HDF5",
        description="Write the completed members of a Zarr ensemble as a Well dataset (OUT/data/SPLIT/NAME.hdf5 and OUT/stats.yaml, "
        "loadable by the_well's WellDataset) or as a PDEBench file (layout multi: a group per sample; single: a dataset per variable). "
        "See docs/interop.md for what each format keeps.",
    )
    parser.add_argument("store", help="the Zarr ensemble")
    parser.add_argument("--format", required=True, choices=FORMATS, help="well or pdebench")
    parser.add_argument("--out", required=True, help="well: the dataset folder; pdebench: the file")
    parser.add_argument("--split", default="train", choices=["train", "valid", "test"], help="well: the split folder (default train)")
    parser.add_argument("--name", help="well: the file's name and dataset_name (default: the recipe's name)")
    parser.add_argument(
        "--layout", default="multi", choices=["multi", "single"], help="pdebench: multi (per-sample groups, default) or single"
    )
    parser.add_argument("--by-parameters", action="store_true", help="pdebench single: one file per distinct parameter value")
    parser.add_argument("--drop-parameters", action="store_true", help="pdebench single: leave parameters that vary between members out")
    parser.set_defaults(func=run_export)
    return parser


def add_import_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``pdekit import`` to ``subparsers`` and returns its parser."""
    parser = subparsers.add_parser(
        "import",
        help="convert The Well's or PDEBench's HDF5 into a Zarr ensemble",
        description="Create a Zarr ensemble from a Well file, folder of files or dataset folder (DIR/data/SPLIT), or from a PDEBench "
        "file (either layout), one trajectory at a time. What a store cannot hold is refused by name; leave it out with --exclude.",
    )
    parser.add_argument("source", help="an HDF5 file, a folder of them, or a Well dataset folder")
    parser.add_argument("--out", required=True, help="the new Zarr store")
    parser.add_argument("--format", choices=FORMATS, help="well or pdebench (default: recognised from the file)")
    parser.add_argument(
        "--split", default="train", choices=["train", "valid", "test"], help="well: the split of a dataset folder (default train)"
    )
    parser.add_argument("--name", help="well: the dataset SOURCE/NAME of a Well base folder")
    parser.add_argument("--exclude", action="append", default=[], metavar="NAME", help="a field or scalar to leave out (repeatable)")
    parser.add_argument("--boundary-conditions", nargs="+", choices=BOUNDARY_CONDITIONS, help="pdebench: one per axis, x y z order")
    parser.add_argument(
        "--parameters", nargs="+", metavar="NAME", help="pdebench: the numeric attributes or config entries to keep as parameters"
    )
    parser.set_defaults(func=run_import)
    return parser


def run_export(args: argparse.Namespace) -> int:
    """Runs ``pdekit export``; returns the exit code."""
    if not Path(args.store).exists() and "://" not in args.store:
        raise FileNotFoundError(f"{args.store}: no such store")
    if args.format == "well":
        from pdekit.io.well import export_well

        written = export_well(args.store, args.out, split=args.split, name=args.name)
    else:
        from pdekit.io.pdebench import export_pdebench

        written = export_pdebench(
            args.store, args.out, layout=args.layout, by_parameters=args.by_parameters, drop_parameters=args.drop_parameters
        )
    for path in written:
        print(f"wrote {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Runs ``pdekit import``; returns the exit code."""
    source = Path(args.source) / args.name if args.name else Path(args.source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    from pdekit.io.formats import detect_format

    kind = args.format or detect_format(source)
    if kind == "well":
        from pdekit.io.well import import_well

        group = import_well(args.source, args.out, split=args.split, name=args.name, exclude=args.exclude)
    else:
        from pdekit.io.pdebench import import_pdebench

        group = import_pdebench(
            args.source, args.out, boundary_conditions=args.boundary_conditions, parameters=args.parameters, exclude=args.exclude
        )
    completed = cast(zarr.Array, group["completed"])
    print(f"imported {completed.shape[0]} members into {args.out} (check it with pdekit validate {args.out})")
    return 0
