"""pdekit: solvers, data, neural operators and training for neural surrogates of PDEs."""

__version__ = "0.2.0"

from pdekit.grid import Grid

__all__ = ["Grid", "__version__"]
