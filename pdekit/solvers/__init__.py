"""Batched numerical solvers in torch: the ground truth that generates data and checks surrogates."""

from pdekit.solvers.allen_cahn import AllenCahn
from pdekit.solvers.base import BlowUpError, Solver, SpectralSolver, default_device
from pdekit.solvers.burgers import Burgers
from pdekit.solvers.fields import GaussianRandomField, RandomFourierModes, fno_forcing, kolmogorov_forcing
from pdekit.solvers.gray_scott import GrayScott, PerturbedSteadyState, RandomGaussians
from pdekit.solvers.heat import Heat
from pdekit.solvers.navier_stokes import NavierStokes2D
from pdekit.solvers.time_stepping import ETDRK4, CrankNicolsonEuler, CrankNicolsonHeun, Exponential

__all__ = [
    "AllenCahn",
    "BlowUpError",
    "Burgers",
    "CrankNicolsonEuler",
    "CrankNicolsonHeun",
    "ETDRK4",
    "Exponential",
    "GaussianRandomField",
    "GrayScott",
    "Heat",
    "NavierStokes2D",
    "PerturbedSteadyState",
    "RandomFourierModes",
    "RandomGaussians",
    "Solver",
    "SpectralSolver",
    "default_device",
    "fno_forcing",
    "kolmogorov_forcing",
]
