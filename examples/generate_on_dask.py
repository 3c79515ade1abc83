"""Generate an ensemble on a dask.distributed cluster (here a LocalCluster; any Client works), then check it.

    python examples/generate_on_dask.py [--members 16] [--workers 2] [--out example-burgers.zarr]

On a real cluster, start a scheduler and workers (or dask-jobqueue on SLURM) and pass
``--scheduler tcp://host:8786``: the batches run on the workers and write straight into the store.
"""

import argparse
import contextlib
from collections.abc import Sequence

from distributed import Client, LocalCluster

from pdekit.data import ValidationReport, generate, validate
from pdekit.data.generate import GenerationSummary
from pdekit.data.recipes import burgers_1d


def main(argv: Sequence[str] | None = None) -> tuple[GenerationSummary, ValidationReport]:
    """Generates the ensemble on the cluster and validates it; returns the generation's summary and the validation report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="address of an existing scheduler (default: start a LocalCluster)")
    parser.add_argument("--out", default="example-burgers.zarr")
    args = parser.parse_args(argv)
    recipe = burgers_1d().with_overrides(members=args.members, batch_size=max(1, args.members // (2 * args.workers)))
    with contextlib.ExitStack() as stack:
        # a Client does not close a cluster it was handed: the LocalCluster is closed by its own context, workers and all
        cluster = args.scheduler or stack.enter_context(LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True))
        client = stack.enter_context(Client(cluster))
        summary = generate(recipe, args.out, resume=True, client=client, progress=False)
    report = validate(args.out)
    print(summary)
    print(report)
    return summary, report


if __name__ == "__main__":
    main()
