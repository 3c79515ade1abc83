"""Generate the `heat_2d` ensemble into a Zarr store.

2D heat on the unit torus with a random (log-uniform) diffusivity per member, 64², t = 0.01 ... 0.2.

    python datasets/heat_2d.py --out heat_2d.zarr --members 64
    python datasets/heat_2d.py --out heat_2d.zarr --resume            # after a crash
    python datasets/heat_2d.py --out heat_2d.zarr --scheduler tcp://host:8786   # on a dask cluster
"""

import argparse
import sys

from pdekit.cli import add_generate_arguments, run_generate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generate_arguments(parser, recipe="heat_2d")
    sys.exit(run_generate(parser.parse_args(), "heat_2d"))
