"""Ensemble recipes: what to simulate, how to sample its parameters, and what to store.

A ``Recipe`` is plain configuration. ``build_solver`` turns it and one batch of sampled parameters
into a pdekit solver; ``RECIPES`` is the catalogue that ``pdekit generate`` and ``datasets/`` use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from pdekit.data.fields import PDES, channel_names
from pdekit.devices import Device
from pdekit.grid import Grid, fourier_truncate
from pdekit.solvers import Burgers, GaussianRandomField, GrayScott, Heat, NavierStokes2D, fno_forcing, kolmogorov_forcing
from pdekit.solvers import gray_scott as gs
from pdekit.solvers.base import SpectralSolver
from pdekit.solvers.fields import FieldSampler


@dataclass(frozen=True)
class Uniform:
    """A parameter drawn uniformly from ``[low, high]``.

    Args:
        low: the least value.
        high: the greatest value.
        log: uniform in ``log(value)`` instead (``LogUniform``).

    Raises:
        ValueError: ``low > high``, or ``low <= 0`` on a log scale.
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high or (self.log and not self.low > 0):
            raise ValueError(f"bad parameter range {self}: need low <= high, and low > 0 on a log scale")

    def transform(self, unit: float) -> float:
        """Returns ``unit`` in ``[0, 1]`` mapped into the range (geometrically when ``log``)."""
        if self.log:
            return math.exp(math.log(self.low) + unit * (math.log(self.high) - math.log(self.low)))
        return self.low + unit * (self.high - self.low)


def LogUniform(low: float, high: float) -> Uniform:
    """Returns the range of a parameter whose logarithm is uniform on ``[log low, log high]``: ``Uniform(low, high, log=True)``."""
    return Uniform(low, high, log=True)


@dataclass(frozen=True)
class Recipe:
    """One simulation ensemble.

    Args:
        name: the recipe's name, recorded in the store.
        pde: a name in ``pdekit.data.fields.PDES``.
        shape: the shape of the grid the solver runs on.
        lengths: the period of each axis; None: the unit torus.
        stored_shape: the grid the store holds (Fourier truncation of the solution); None: ``shape``.
        times: output times; ``t = 0`` (the initial condition) is always stored first.
        dt: the largest time step; ``cfl`` shrinks it where the flow needs (advective PDEs).
        parameters: per-PDE parameter name to a constant or a ``Uniform`` range.
        sampling: ``"random"``, ``"latin_hypercube"`` or ``"sobol"`` over the ranged parameters.
        forcing: ``"fno"``, ``"kolmogorov"`` or None (Navier-Stokes only).
        initial_field: the sampler of initial states.
        members: the ensemble's size.
        batch_size: members per solver call.
        seed: the seed every member's parameters and initial state derive from.
        fields: the fields to record, in channel order (empty: the PDE's default, e.g. vorticity
            for Navier-Stokes; ``("vorticity", "velocity")`` records both).

    Raises:
        ValueError: an unknown pde, parameter, field or sampling, fewer than one member or one per
            batch, times that are not positive and increasing, or a ``stored_shape`` larger than ``shape``.
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
    initial_field: FieldSampler | gs.RandomGaussians | gs.PerturbedSteadyState = GaussianRandomField()
    members: int = 64
    batch_size: int = 16
    seed: int = 0
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pde not in PDES:
            raise ValueError(f"recipe {self.name!r}: unknown pde {self.pde!r}; expected one of {sorted(PDES)}")
        known = PDES[self.pde].parameter_names
        unknown = set(self.parameters) - set(known)
        if unknown:
            raise ValueError(f"recipe {self.name!r}: {self.pde} has no parameter {sorted(unknown)}; it has {known}")
        object.__setattr__(self, "fields", tuple(self.fields))
        if self.fields:
            PDES[self.pde].check_fields(self.fields, f"recipe {self.name!r}")
        if self.sampling not in ("random", "latin_hypercube", "sobol"):
            raise ValueError(f"recipe {self.name!r}: sampling must be random, latin_hypercube or sobol; got {self.sampling!r}")
        if self.members < 1 or self.batch_size < 1:
            raise ValueError(f"recipe {self.name!r}: members and batch_size must be >= 1; got {self.members}, {self.batch_size}")
        if not self.times or min(self.times) <= 0 or list(self.times) != sorted(self.times):
            raise ValueError(f"recipe {self.name!r}: times must be increasing and positive; got {self.times}")
        stored = self.stored_shape or self.shape
        if len(stored) != len(self.shape) or any(s > n for s, n in zip(stored, self.shape, strict=True)):
            raise ValueError(f"recipe {self.name!r}: stored_shape {stored} must not exceed shape {self.shape}")

    @property
    def grid(self) -> Grid:
        """Returns the grid the solver runs on."""
        return Grid(self.shape, self.lengths)

    @property
    def stored_grid(self) -> Grid:
        """Returns the grid the store holds."""
        return Grid(self.stored_shape or self.shape, self.grid.lengths)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Returns the recorded fields, in channel order."""
        return self.fields or PDES[self.pde].default_fields

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Returns the names of the recorded channels (a vector field has one per axis)."""
        return channel_names(PDES[self.pde], self.field_names, self.grid.ndim)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Returns the names of the parameters the recipe sets, in the PDE's order."""
        return tuple(p for p in PDES[self.pde].parameter_names if p in self.parameters)

    @property
    def ranged_parameters(self) -> tuple[str, ...]:
        """Returns the names of the parameters drawn from a range (``Uniform``), in the PDE's order."""
        return tuple(p for p in self.parameter_names if isinstance(self.parameters[p], Uniform))

    def with_overrides(self, **changes) -> Recipe:
        """Returns a copy with the given fields changed; None values are ignored (so ``cfl=None`` keeps the CFL limit).

        Raises:
            ValueError: a changed recipe that ``Recipe`` refuses.
        """
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_attrs(self) -> dict:
        """Returns the recipe as JSON-compatible attributes for the store."""
        attrs = asdict(self)
        attrs["fields"] = list(self.field_names)
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


def _heat(recipe: Recipe, parameters: dict[str, torch.Tensor], common: dict) -> SpectralSolver:
    return Heat(recipe.grid, parameters["diffusivity"], **common)


def _burgers(recipe: Recipe, parameters: dict[str, torch.Tensor], common: dict) -> SpectralSolver:
    return Burgers(recipe.grid, parameters["viscosity"], cfl=recipe.cfl, **common)


FORCINGS = {"fno": fno_forcing, "kolmogorov": kolmogorov_forcing, None: lambda grid: None}


def _navier_stokes(recipe: Recipe, parameters: dict[str, torch.Tensor], common: dict) -> SpectralSolver:
    physics: dict[str, Any] = dict(parameters)  # the recipe's parameters are the solver's keywords of the same names
    return NavierStokes2D(recipe.grid, forcing=FORCINGS[recipe.forcing](recipe.grid), cfl=recipe.cfl, **physics, **common)


def _gray_scott(recipe: Recipe, parameters: dict[str, torch.Tensor], common: dict) -> SpectralSolver:
    physics: dict[str, Any] = dict(parameters)
    return GrayScott(recipe.grid, **physics, **common)


SOLVERS = {"heat": _heat, "burgers": _burgers, "navier_stokes_2d": _navier_stokes, "gray_scott": _gray_scott}


def build_solver(recipe: Recipe, parameters: dict[str, torch.Tensor], device: Device | None = None) -> SpectralSolver:
    """Returns the recipe's solver with per-member ``parameters`` (name -> ``[batch]`` float64 tensor)."""
    return SOLVERS[recipe.pde](recipe, parameters, dict(device=device, dtype=torch.float64, initial_field=recipe.initial_field))


def solver_description(recipe: Recipe) -> tuple[str, str]:
    """Returns the recipe's solver class name and time-stepping scheme, as a store records them."""
    probe = build_solver(recipe, {n: torch.ones(1) for n in recipe.parameter_names}, device="cpu")
    return type(probe).__name__, probe.scheme.name


def record(recipe: Recipe, trajectory: torch.Tensor) -> torch.Tensor:
    """Returns what a store keeps of a solver ``trajectory [B, T, C_solver, *shape]``: the recipe's fields on its stored grid, ``[B, T, C,
    *stored_shape]``."""
    fields = PDES[recipe.pde].observe(recipe.field_names, trajectory, recipe.grid)
    return fourier_truncate(fields, recipe.stored_grid.shape)


def fno_navier_stokes(viscosity: float = 1e-3) -> Recipe:
    """The FNO paper's Navier-Stokes data (Li et al., ICLR 2021): nu in {1e-3, 1e-4, 1e-5}, T = 50.

    Solved at 256² with ETDRK4 under a CFL limit, stored at 64² (Fourier truncation), vorticity at
    t = 0, 1, ..., 50, forcing ``0.1 (sin 2pi(x+y) + cos 2pi(x+y))``, initial vorticity from the
    paper's Gaussian random field (alpha = 2.5, tau = 7).
    """
    return Recipe(
        name=f"fno_navier_stokes_nu{viscosity:g}",
        pde="navier_stokes_2d",
        shape=(256, 256),
        stored_shape=(64, 64),
        times=tuple(float(t) for t in range(1, 51)),
        dt=0.05,
        cfl=0.5,
        forcing="fno",
        parameters={"viscosity": viscosity},
        initial_field=GaussianRandomField(alpha=2.5, tau=7.0),
        members=1200,
        batch_size=8,
    )


def kolmogorov_flow(reynolds: float | Sequence[float] = (100.0, 1000.0)) -> Recipe:
    """Kolmogorov flow on the 2pi-torus over a range of Reynolds numbers ``Re = 1 / nu`` (log-uniform), or at one.

    Forcing ``sin(4y)`` in the x-momentum with linear drag 0.1 (Kochkov et al., PNAS 2021), solved at
    128², stored at 64², t = 0.5, 1, ..., 20.

    Args:
        reynolds: ``(low, high)``: every member draws its own Re in the range; a number (or a
            one-element sequence): every member has that Re (the recipe is then named
            ``kolmogorov_flow_re<Re>``).

    Raises:
        ValueError: a Reynolds number that is not positive and finite, or ``low > high``.
    """
    values = [float(reynolds)] if isinstance(reynolds, numbers.Real) else [float(r) for r in reynolds]  # type: ignore[union-attr]
    bounds = tuple(values * 2 if len(values) == 1 else values)  # a number, or a command line's one value
    single = len(bounds) == 2 and bounds[0] == bounds[1]
    if len(bounds) != 2 or not all(0 < r < math.inf for r in bounds) or bounds[0] > bounds[1]:
        raise ValueError(f"reynolds must be a positive number or a range (low, high) with 0 < low <= high; got {reynolds}")
    viscosity = 1 / bounds[0] if single else LogUniform(1 / bounds[1], 1 / bounds[0])
    return Recipe(
        name=f"kolmogorov_flow_re{bounds[0]:g}" if single else "kolmogorov_flow",
        pde="navier_stokes_2d",
        shape=(128, 128),
        stored_shape=(64, 64),
        lengths=(2 * math.pi, 2 * math.pi),
        times=tuple(0.5 * i for i in range(1, 41)),
        dt=1e-2,
        cfl=0.5,
        forcing="kolmogorov",
        parameters={"viscosity": viscosity, "drag": 0.1},
        initial_field=GaussianRandomField(alpha=2.5, tau=3.0, sigma=5.0),
        sampling="latin_hypercube",
        members=256,
        batch_size=16,
    )


def heat_2d() -> Recipe:
    """2D heat on the unit torus with a random (log-uniform) diffusivity per member, 64², t = 0.01 ... 0.2."""
    return Recipe(
        name="heat_2d",
        pde="heat",
        shape=(64, 64),
        times=tuple(0.01 * i for i in range(1, 21)),
        dt=0.01,
        parameters={"diffusivity": LogUniform(1e-3, 1e-2)},
        initial_field=GaussianRandomField(alpha=2.0, tau=3.0),
        sampling="sobol",
        members=256,
        batch_size=64,
    )


def burgers_1d() -> Recipe:
    """1D viscous Burgers over viscosities 1e-2 ... 1e-1 (log-uniform), solved at 1024, stored at 256, t = 0.05 ... 1."""
    return Recipe(
        name="burgers_1d",
        pde="burgers",
        shape=(1024,),
        stored_shape=(256,),
        times=tuple(0.05 * i for i in range(1, 21)),
        dt=1e-3,
        cfl=0.5,
        parameters={"viscosity": LogUniform(1e-2, 1e-1)},
        initial_field=GaussianRandomField(alpha=2.0, tau=5.0, sigma=25.0),
        sampling="latin_hypercube",
        members=512,
        batch_size=64,
    )


def gray_scott(pattern: str = "gliders") -> Recipe:
    """Gray-Scott reaction-diffusion in The Well's setting (``gray_scott_reaction_diffusion``) for one of its patterns.

    The feed and kill rates of ``pattern`` (``gray_scott.WELL_PATTERNS``: gliders, bubbles, maze,
    worms, spirals, spots), ``D_u = 2e-5``, ``D_v = 1e-5`` on ``[-1, 1]^2`` at 128², ETDRK4 with
    ``dt = 1``, both species stored every 10 time units up to t = 10 000, from The Well's random
    Gaussian initial states (The Well's other half starts from ``PerturbedSteadyState``, which a
    recipe can set as its ``initial_field``); 200 members as The Well has per pattern. The patterns are resolved to
    about 1-2% at 128² (``GrayScott``'s docstring): set ``--shape 256 256 --stored-shape 128 128`` for
    a resolved ensemble on The Well's grid.
    """
    if pattern not in gs.WELL_PATTERNS:
        raise ValueError(f"gray_scott pattern must be one of {sorted(gs.WELL_PATTERNS)}; got {pattern!r}")
    feed, kill = gs.WELL_PATTERNS[pattern]
    steps = round(gs.WELL_FINAL_TIME / gs.WELL_OUTPUT_INTERVAL)
    return Recipe(
        name=f"gray_scott_{pattern}",
        pde="gray_scott",
        shape=gs.WELL_SHAPE,
        lengths=gs.WELL_LENGTHS,
        times=tuple(gs.WELL_OUTPUT_INTERVAL * n for n in range(1, steps + 1)),
        dt=gs.WELL_DT,
        parameters={"feed": feed, "kill": kill, "diffusivity_u": gs.WELL_DIFFUSIVITY_U, "diffusivity_v": gs.WELL_DIFFUSIVITY_V},
        initial_field=gs.RandomGaussians(),
        members=200,
        batch_size=8,
    )


RECIPES: dict[str, Callable[..., Recipe]] = {
    "fno_navier_stokes": fno_navier_stokes,
    "kolmogorov_flow": kolmogorov_flow,
    "heat_2d": heat_2d,
    "burgers_1d": burgers_1d,
    "gray_scott": gray_scott,
}
"""The recipe catalogue of ``pdekit generate`` and ``datasets/``: name -> a function returning its ``Recipe`` (some take options,
e.g. ``fno_navier_stokes(viscosity)``, ``gray_scott(pattern)``)."""

RECIPE_OPTIONS = {"viscosity": "fno_navier_stokes", "reynolds": "kolmogorov_flow", "pattern": "gray_scott"}
"""The option each recipe function takes -> that recipe's name (the commands' ``--viscosity``, ``--reynolds``, ``--pattern``)."""


def named_recipe(name: str, **options) -> Recipe:
    """Returns the catalogue's recipe ``name`` built with ``options`` (``RECIPE_OPTIONS``; None: the recipe's default).

    Raises:
        ValueError: an option belongs to another recipe (named as the command-line option), or the recipe refuses its value.
    """
    given = {k: v for k, v in options.items() if v is not None}
    for option in given:
        owner = RECIPE_OPTIONS.get(option)
        if owner != name:
            raise ValueError(f"--{option} applies to {owner}, not {name}" if owner else f"unknown recipe option {option!r}")
    return RECIPES[name](**given)
