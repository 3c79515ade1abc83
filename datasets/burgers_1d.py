"""Generate the `burgers_1d` ensemble into a Zarr store.

1D viscous Burgers over viscosities 1e-2 ... 1e-1 (log-uniform), solved at 1024, stored at 256, t = 0.05 ... 1.

    python datasets/burgers_1d.py --out burgers_1d.zarr --members 64
    python datasets/burgers_1d.py --out burgers_1d.zarr --resume            # after a crash
    python datasets/burgers_1d.py --out burgers_1d.zarr --scheduler tcp://host:8786   # on a dask cluster
"""

import argparse
import sys

from pdekit.cli import add_generate_arguments, run_generate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generate_arguments(parser, recipe="burgers_1d")
    sys.exit(run_generate(parser.parse_args(), "burgers_1d"))
