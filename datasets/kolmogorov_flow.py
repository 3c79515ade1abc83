"""Generate the `kolmogorov_flow` ensemble into a Zarr store.

Kolmogorov flow on the 2pi-torus over a range of Reynolds numbers ``Re = 1 / nu`` (log-uniform).

    Forcing ``sin(4y)`` in the x-momentum with linear drag 0.1 (Kochkov et al., PNAS 2021), solved at
    128², stored at 64², t = 0.5, 1, ..., 20.

    python datasets/kolmogorov_flow.py --out kolmogorov_flow.zarr --members 64
    python datasets/kolmogorov_flow.py --out kolmogorov_re1000.zarr --reynolds 1000   # every member at Re = 1000
    python datasets/kolmogorov_flow.py --out kolmogorov_flow.zarr --resume            # after a crash
    python datasets/kolmogorov_flow.py --out kolmogorov_flow.zarr --scheduler tcp://host:8786   # on a dask cluster
"""

import argparse
import sys

from pdekit.cli import add_generate_arguments, run_generate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generate_arguments(parser, recipe="kolmogorov_flow")
    sys.exit(run_generate(parser.parse_args(), "kolmogorov_flow"))
