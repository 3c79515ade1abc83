"""Generate the `fno_navier_stokes` ensemble into a Zarr store.

The FNO paper's Navier-Stokes data (Li et al., ICLR 2021): nu in {1e-3, 1e-4, 1e-5}, T = 50.

    Solved at 256² with ETDRK4 under a CFL limit, stored at 64² (Fourier truncation), vorticity at
    t = 0, 1, ..., 50, forcing ``0.1 (sin 2pi(x+y) + cos 2pi(x+y))``, initial vorticity from the
    paper's Gaussian random field (alpha = 2.5, tau = 7).

    python datasets/fno_navier_stokes.py --out fno_navier_stokes.zarr --members 64
    python datasets/fno_navier_stokes.py --out fno_navier_stokes.zarr --resume            # after a crash
    python datasets/fno_navier_stokes.py --out fno_navier_stokes.zarr --scheduler tcp://host:8786   # on a dask cluster
"""

import argparse
import sys

from pdekit.cli import add_generate_arguments, run_generate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generate_arguments(parser, recipe="fno_navier_stokes")
    sys.exit(run_generate(parser.parse_args(), "fno_navier_stokes"))
