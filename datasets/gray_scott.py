"""Generate a `gray_scott` ensemble (The Well's gray_scott_reaction_diffusion setting) into a Zarr store.

Gray-Scott reaction-diffusion of two species on [-1, 1]², 128², both species every 10 time units to
t = 10 000, for one of The Well's patterns (feed and kill rates): gliders, bubbles, maze, worms,
spirals, spots.

    python datasets/gray_scott.py --out gray_scott_spots.zarr --pattern spots --members 16
    python datasets/gray_scott.py --out gs.zarr --pattern maze --shape 256 256 --stored-shape 128 128   # resolved
    python datasets/gray_scott.py --out gs.zarr --pattern maze --times 0:1000:10 --members 8             # a short one
"""

import argparse
import sys

from pdekit.cli import add_generate_arguments, run_generate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generate_arguments(parser, recipe="gray_scott")
    sys.exit(run_generate(parser.parse_args(), "gray_scott"))
