"""Ensemble recipes: what to simulate, how to sample its parameters, and what to store.

A ``Recipe`` is plain configuration. ``build_solver`` turns it and one batch of sampled parameters
into a pdekit solver; ``RECIPES`` is the catalogue that ``pdekit generate`` and ``datasets/`` use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch

from pdekit.grid import Grid
from pdekit.solvers import Burgers, GaussianRandomField, Heat, NavierStokes2D, fno_forcing, kolmogorov_forcing
from pdekit.solvers.base import SpectralSolver


@dataclass(frozen=True)
class Uniform:
    """A parameter drawn uniformly from ``[low, high]``."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and not self.low > 0):
            raise ValueError(f"bad parameter range {self}: need low <= high, and low > 0 on a log scale")

    def transform(self, unit: float) -> float:
        """Maps ``unit`` in ``[0, 1]`` into the range (geometrically when ``log``)."""
        if self.log:
            return math.exp(math.log(self.low) + unit * (math.log(self.high) - math.log(self.low)))
        return self.low + unit * (self.high - self.low)


def LogUniform(low: float, high: float) -> Uniform:
    """A parameter whose logarithm is uniform on ``[log low, log high]``."""
    return Uniform(low, high, log=True)


PDES = ("navier_stokes_2d", "heat", "burgers")
FIELD_NAMES = {"navier_stokes_2d": "vorticity", "heat": "temperature", "burgers": "velocity"}
PARAMETERS = {
    "navier_stokes_2d": ("viscosity", "forcing_amplitude", "drag"),
    "heat": ("diffusivity",),
    "burgers": ("viscosity",),
}


@dataclass(frozen=True)
class Recipe:
    """One simulation ensemble.

    Args:
        name: the recipe's name, recorded in the store.
        pde: one of ``PDES``.
        shape, lengths: the grid the solver runs on.
        stored_shape: the grid the store holds (Fourier truncation of the solution); None: ``shape``.
        times: output times; ``t = 0`` (the initial condition) is always stored first.
        dt: the largest time step; ``cfl`` shrinks it where the flow needs (advective PDEs).
        parameters: per-PDE parameter name to a constant or a ``Uniform`` range.
        sampling: ``"random"``, ``"latin_hypercube"`` or ``"sobol"`` over the ranged parameters.
        forcing: ``"fno"``, ``"kolmogorov"`` or None (Navier-Stokes only).
        initial_field: the sampler of initial states.
        members, batch_size, seed: ensemble size, members per solver call, base seed.
    """

    name: str
    pde: str
    shape: tuple[int, ...]
    times: tuple[float, ...]
    dt: float
    parameters: dict = field(default_factory=dict)
    lengths: tuple[float, ...] | None = None
    stored_shape: tuple[int, ...] | None = None
    cfl: float | None = None
    sampling: str = "random"
    forcing: str | None = None
    initial_field: GaussianRandomField = GaussianRandomField()
    members: int = 64
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pde not in PDES:
            raise ValueError(f"recipe {self.name!r}: unknown pde {self.pde!r}; expected one of {PDES}")
        unknown = set(self.parameters) - set(PARAMETERS[self.pde])
        if unknown:
            raise ValueError(f"recipe {self.name!r}: {self.pde} has no parameter {sorted(unknown)}; it has {PARAMETERS[self.pde]}")
        if self.sampling not in ("random", "latin_hypercube", "sobol"):
            raise ValueError(f"recipe {self.name!r}: sampling must be random, latin_hypercube or sobol; got {self.sampling!r}")
        if self.members < 1 or self.batch_size < 1:
            raise ValueError(f"recipe {self.name!r}: members and batch_size must be >= 1; got {self.members}, {self.batch_size}")
        if not self.times or min(self.times) <= 0 or list(self.times) != sorted(self.times):
            raise ValueError(f"recipe {self.name!r}: times must be increasing and positive; got {self.times}")
        stored = self.stored_shape or self.shape
        if len(stored) != len(self.shape) or any(s > n for s, n in zip(stored, self.shape)):
            raise ValueError(f"recipe {self.name!r}: stored_shape {stored} must not exceed shape {self.shape}")

    @property
    def grid(self) -> Grid:
        return Grid(self.shape, self.lengths)

    @property
    def stored_grid(self) -> Grid:
        return Grid(self.stored_shape or self.shape, self.grid.lengths)

    @property
    def field_name(self) -> str:
        return FIELD_NAMES[self.pde]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p for p in PARAMETERS[self.pde] if p in self.parameters)

    @property
    def ranged_parameters(self) -> tuple[str, ...]:
        return tuple(p for p in self.parameter_names if isinstance(self.parameters[p], Uniform))

    def with_overrides(self, **changes) -> "Recipe":
        """Returns a copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_attrs(self) -> dict:
        """Returns the recipe as JSON-compatible attributes for the store."""
        attrs = asdict(self)
        attrs["parameters"] = {k: (asdict(v) if isinstance(v, Uniform) else v) for k, v in self.parameters.items()}
        attrs["initial_field"] = {"type": type(self.initial_field).__name__, **asdict(self.initial_field)}
        return attrs


def differing_settings(stored: dict, recipe: Recipe, ignore: tuple[str, ...] = ()) -> list[str]:
    """Returns the settings of ``recipe`` whose value differs from ``stored`` (a store's ``recipe`` attribute), less ``ignore``."""
    wanted = recipe.to_attrs()
    return [k for k in wanted if k not in ignore and _as_json(stored.get(k)) != _as_json(wanted[k])]


def _as_json(value):
    """Returns ``value`` with tuples as lists, as JSON attributes read back."""
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def build_solver(recipe: Recipe, parameters: dict[str, torch.Tensor], device=None) -> SpectralSolver:
    """Returns the recipe's solver with per-member ``parameters`` (name -> ``[batch]`` float64 tensor)."""
    grid = recipe.grid
    common = dict(device=device, dtype=torch.float64, initial_field=recipe.initial_field)
    if recipe.pde == "heat":
        return Heat(grid, parameters["diffusivity"], **common)
    if recipe.pde == "burgers":
        return Burgers(grid, parameters["viscosity"], cfl=recipe.cfl, **common)
    forcing = {"fno": fno_forcing, "kolmogorov": kolmogorov_forcing, None: lambda g: None}[recipe.forcing](grid)
    return NavierStokes2D(grid, forcing=forcing, cfl=recipe.cfl, **parameters, **common)


def fno_navier_stokes(viscosity: float = 1e-3) -> Recipe:
    """The FNO paper's Navier-Stokes data (Li et al., ICLR 2021): nu in {1e-3, 1e-4, 1e-5}, T = 50.

    Solved at 256² with ETDRK4 under a CFL limit, stored at 64² (Fourier truncation), vorticity at
    t = 0, 1, ..., 50, forcing ``0.1 (sin 2pi(x+y) + cos 2pi(x+y))``, initial vorticity from the
    paper's Gaussian random field (alpha = 2.5, tau = 7).
    """
    return Recipe(
        name=f"fno_navier_stokes_nu{viscosity:g}", pde="navier_stokes_2d", shape=(256, 256), stored_shape=(64, 64),
        times=tuple(float(t) for t in range(1, 51)), dt=0.05, cfl=0.5, forcing="fno",
        parameters={"viscosity": viscosity}, initial_field=GaussianRandomField(alpha=2.5, tau=7.0),
        members=1200, batch_size=8,
    )


def kolmogorov_flow(reynolds: tuple[float, float] = (100.0, 1000.0)) -> Recipe:
    """Kolmogorov flow on the 2pi-torus over a range of Reynolds numbers ``Re = 1 / nu`` (log-uniform).

    Forcing ``sin(4y)`` in the x-momentum with linear drag 0.1 (Kochkov et al., PNAS 2021), solved at
    128², stored at 64², t = 0.5, 1, ..., 20.
    """
    return Recipe(
        name="kolmogorov_flow", pde="navier_stokes_2d", shape=(128, 128), stored_shape=(64, 64),
        lengths=(2 * math.pi, 2 * math.pi), times=tuple(0.5 * i for i in range(1, 41)), dt=1e-2, cfl=0.5,
        forcing="kolmogorov", parameters={"viscosity": LogUniform(1 / reynolds[1], 1 / reynolds[0]), "drag": 0.1},
        initial_field=GaussianRandomField(alpha=2.5, tau=3.0, sigma=5.0), sampling="latin_hypercube",
        members=256, batch_size=16,
    )


def heat_2d() -> Recipe:
    """2D heat on the unit torus with a random (log-uniform) diffusivity per member, 64², t = 0.01 ... 0.2."""
    return Recipe(
        name="heat_2d", pde="heat", shape=(64, 64), times=tuple(0.01 * i for i in range(1, 21)), dt=0.01,
        parameters={"diffusivity": LogUniform(1e-3, 1e-2)}, initial_field=GaussianRandomField(alpha=2.0, tau=3.0),
        sampling="sobol", members=256, batch_size=64,
    )


def burgers_1d() -> Recipe:
    """1D viscous Burgers over viscosities 1e-2 ... 1e-1 (log-uniform), solved at 1024, stored at 256, t = 0.05 ... 1."""
    return Recipe(
        name="burgers_1d", pde="burgers", shape=(1024,), stored_shape=(256,), times=tuple(0.05 * i for i in range(1, 21)),
        dt=1e-3, cfl=0.5, parameters={"viscosity": LogUniform(1e-2, 1e-1)},
        initial_field=GaussianRandomField(alpha=2.0, tau=5.0, sigma=25.0), sampling="latin_hypercube",
        members=512, batch_size=64,
    )


RECIPES = {
    "fno_navier_stokes": fno_navier_stokes,
    "kolmogorov_flow": kolmogorov_flow,
    "heat_2d": heat_2d,
    "burgers_1d": burgers_1d,
}
