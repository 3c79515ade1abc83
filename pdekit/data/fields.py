"""The field registry: each PDE's fields (scalars and vectors), its parameters, and how a solver state becomes them.

Everything that names a field or a parameter (the store's schema, the recipes, the CLI's choices,
the docs) reads ``PDES`` instead of keeping its own list. In memory a trajectory is one tensor
``[batch, time, channel, *space]`` whose channels are the recorded fields in order, a vector field
contributing one channel per spatial axis (``velocity`` in 2D: ``velocity_x, velocity_y``, i.e.
``u, v``); a store keeps one variable per field (``pdekit.data.schema``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from pdekit.grid import Grid
from pdekit.solvers.navier_stokes import velocity_from_vorticity

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Field:
    """A recorded field: a scalar, or a vector with one component per spatial axis (``x, y, z`` order).

    Args:
        name: the store's variable name.
        long_name: its CF ``long_name``.
        units: its CF ``units``.
        vector: whether it has one component per spatial axis.
    """

    name: str
    long_name: str
    units: str = "1"
    vector: bool = False

    def components(self, ndim: int) -> tuple[str, ...]:
        """Returns the component labels (``("x", "y")`` for a 2D vector), or ``()`` for a scalar."""
        return AXES[:ndim] if self.vector else ()

    def channels(self, ndim: int) -> tuple[str, ...]:
        """Returns the names of this field's channels: ``(name,)``, or ``name_x, name_y, ...`` for a vector."""
        return tuple(f"{self.name}_{c}" for c in self.components(ndim)) or (self.name,)


@dataclass(frozen=True)
class Parameter:
    """A per-member PDE parameter.

    Args:
        name: the keyword of the solver and the store's variable name.
        long_name: its CF ``long_name``.
        units: its CF ``units``.
    """

    name: str
    long_name: str
    units: str = "1"


# Returns the fields of a solver trajectory ``[batch, time, solver channel, *space]`` as
# channel-stacked tensors ``[batch, time, field channels, *space]``.
Observation = Callable[[torch.Tensor, Grid], torch.Tensor]


@dataclass(frozen=True)
class PDE:
    """A PDE's recordable fields (``observe`` maps a solver state to each), its default record and its parameters."""

    name: str
    fields: dict[str, tuple[Field, Observation]]
    default_fields: tuple[str, ...]
    parameters: tuple[Parameter, ...]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Returns the names of the PDE's parameters."""
        return tuple(p.name for p in self.parameters)

    def field(self, name: str) -> Field:
        """Returns the field ``name`` (a KeyError for another name; ``check_fields`` says which exist)."""
        return self.fields[name][0]

    def check_fields(self, names: Sequence[str], where: str) -> None:
        """Raises ValueError unless ``names`` is a non-empty list of distinct fields of this PDE."""
        unknown = [n for n in names if n not in self.fields]
        if not names or unknown or len(set(names)) != len(names):
            raise ValueError(f"{where}: fields must be distinct names among {sorted(self.fields)} for {self.name}; got {list(names)}")

    def observe(self, names: Sequence[str], trajectory: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Returns the fields ``names`` of a solver ``trajectory [B, T, C_solver, *space]``, channel-stacked: ``[B, T, C, *space]``."""
        return torch.cat([self.fields[n][1](trajectory, grid) for n in names], dim=2)


def channel_names(pde: PDE, fields: Sequence[str], ndim: int) -> tuple[str, ...]:
    """Returns the channel names of ``fields`` on an ``ndim``-dimensional grid, in channel order."""
    return tuple(c for name in fields for c in pde.field(name).channels(ndim))


def _channel(index: int) -> Observation:
    return lambda trajectory, grid: trajectory[:, :, index : index + 1]


def _velocity(trajectory: torch.Tensor, grid: Grid) -> torch.Tensor:
    return velocity_from_vorticity(trajectory[:, :, 0:1], grid)


_viscosity = Parameter("viscosity", "kinematic viscosity")
PDES: dict[str, PDE] = {
    "navier_stokes_2d": PDE(
        "navier_stokes_2d",
        {
            "vorticity": (Field("vorticity", "vorticity (curl of velocity)"), _channel(0)),
            "velocity": (Field("velocity", "velocity (u, v)", vector=True), _velocity),
        },
        ("vorticity",),
        (_viscosity, Parameter("forcing_amplitude", "forcing amplitude factor"), Parameter("drag", "linear drag coefficient")),
    ),
    "heat": PDE(
        "heat",
        {"temperature": (Field("temperature", "temperature"), _channel(0))},
        ("temperature",),
        (Parameter("diffusivity", "thermal diffusivity"),),
    ),
    # In 1D the velocity has one component: it is stored as a scalar.
    "burgers": PDE("burgers", {"velocity": (Field("velocity", "velocity"), _channel(0))}, ("velocity",), (_viscosity,)),
    "gray_scott": PDE(
        "gray_scott",
        {
            "u": (Field("u", "concentration of the fed species U (The Well's A)"), _channel(0)),
            "v": (Field("v", "concentration of the autocatalytic species V (The Well's B)"), _channel(1)),
        },
        ("u", "v"),
        (
            Parameter("feed", "feed rate F"),
            Parameter("kill", "kill rate k"),
            Parameter("diffusivity_u", "diffusivity of U"),
            Parameter("diffusivity_v", "diffusivity of V"),
        ),
    ),
}
"""The PDEs pdekit generates, by the name a recipe's ``pde`` gives: their fields, default record and parameters."""
