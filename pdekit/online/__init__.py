"""Online training: a solver generating samples beside the trainer, through a reservoir on the training device."""

from pdekit.online.generator import Generator, GeneratorCounters, Solved, cut_windows, solve_members, stream_parameters_and_seeds
from pdekit.online.reservoir import POLICIES, Reservoir, ReservoirClosed, ReservoirCounters
from pdekit.online.stream import OnlineConfig, ReservoirBatches

__all__ = [
    "Generator",
    "GeneratorCounters",
    "OnlineConfig",
    "POLICIES",
    "Reservoir",
    "ReservoirClosed",
    "ReservoirBatches",
    "ReservoirCounters",
    "Solved",
    "cut_windows",
    "solve_members",
    "stream_parameters_and_seeds",
]
