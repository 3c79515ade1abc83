"""Generate an ensemble on a dask.distributed cluster (here a LocalCluster; any Client works), then check it.

    python examples/generate_on_dask.py [--members 16] [--workers 2] [--out example-burgers.zarr]

On a real cluster, start a scheduler and workers (or dask-jobqueue on SLURM) and pass
``--scheduler tcp://host:8786``: the batches run on the workers and write straight into the store.
"""

import argparse

from distributed import Client, LocalCluster

from pdekit.data import generate, validate
from pdekit.data.recipes import burgers_1d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="address of an existing scheduler (default: start a LocalCluster)")
    parser.add_argument("--out", default="example-burgers.zarr")
    args = parser.parse_args()
    recipe = burgers_1d().with_overrides(members=args.members, batch_size=max(1, args.members // (2 * args.workers)))
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True))
    with client:
        summary = generate(recipe, args.out, resume=True, client=client, progress=False)
    print(summary)
    print(validate(args.out))


if __name__ == "__main__":
    main()
