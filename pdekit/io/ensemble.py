"""A format-neutral description of an ensemble: what exporters read from a store and importers build one from.

``Ensemble`` holds everything of a store but its trajectories, in the words both HDF5 formats use:
coordinates and boundary conditions per named axis in ``x, y, z`` order, per-member parameters
and seeds, the fields in channel order. ``read_ensemble`` describes a store's *completed*
members (incomplete and failed members are never exported); ``member_trajectories`` streams
their trajectories ``[time, channel, *space]`` one member at a time; ``write_ensemble`` creates a
store from a description and streams trajectories into it. Spatial array axes are pdekit's
``(z, y, x)`` throughout; ``reverse_space`` turns them into the ``(x, y, z)`` order both The Well and
PDEBench use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import zarr

from pdekit.data.fields import AXES, Field, Parameter
from pdekit.data.schema import BOUNDARY_CONDITIONS, SPACE_DIMS, StoreError, json_attribute, names
from pdekit.data.store import Layout, MemberReader, create_store, member_status, open_store, store_fields, values, variable, write_member
from pdekit.grid import Grid

# Names a store gives its own variables: a field or parameter of these names would overwrite them.
RESERVED = ("member", "time", "x", "y", "z", "seed", "completed", "failed", "failure_time")
# The store attributes an ensemble carries across formats (schema and version attributes are the store's own).
CARRIED_ATTRIBUTES = ("pde", "solver", "scheme", "title")


@dataclass(frozen=True)
class Ensemble:
    """An ensemble without its trajectories.

    Attributes:
        fields: the fields, in channel order (a vector field has one channel per axis, ``x, y, z``).
        times: ``[time]`` float64.
        coordinates: axis name (``x``, ``y``, ``z``, in that order) -> ``[points]`` float64, uniform.
        boundary_conditions: axis name -> ``periodic``, ``wall`` or ``open``.
        parameters: the per-member parameters; ``values`` maps each name to ``[members]`` float64.
        seeds: ``[members]`` int64; -1 where the source does not say.
        attributes: ``pde``, ``solver``, ``scheme``, ``title`` and ``recipe`` (a dict).
        members: the member index of each trajectory in its source store.
    """

    fields: tuple[Field, ...]
    times: np.ndarray
    coordinates: dict[str, np.ndarray]
    boundary_conditions: dict[str, str]
    parameters: tuple[Parameter, ...]
    values: dict[str, np.ndarray]
    seeds: np.ndarray
    attributes: dict
    members: np.ndarray

    @property
    def axes(self) -> tuple[str, ...]:
        """Returns the spatial axis names in ``x, y, z`` order."""
        return AXES[: len(self.coordinates)]

    @property
    def ndim(self) -> int:
        return len(self.coordinates)

    @property
    def shape(self) -> tuple[int, ...]:
        """Returns the spatial shape in pdekit's array order ``(z, y, x)``."""
        return tuple(len(self.coordinates[a]) for a in SPACE_DIMS[self.ndim])

    @property
    def n_members(self) -> int:
        return len(self.members)

    def channels(self, field: Field) -> int:
        """Returns the number of channels of ``field``: 1, or one per axis for a vector."""
        return len(field.components(self.ndim)) or 1

    def channel_names(self) -> tuple[str, ...]:
        return tuple(c for f in self.fields for c in f.channels(self.ndim))

    def varying_parameters(self) -> list[str]:
        """Returns the parameters whose value differs between members."""
        return [p.name for p in self.parameters if len(np.unique(self.values[p.name])) > 1]


def reverse_space(array: np.ndarray, leading: int, trailing: int = 0) -> np.ndarray:
    """Returns ``array [*leading axes, *space, *trailing axes]`` with its spatial axes reversed: ``(z, y, x)`` <-> ``(x, y, z)``."""
    space = range(leading, array.ndim - trailing)
    return np.transpose(array, (*range(leading), *reversed(space), *range(array.ndim - trailing, array.ndim)))


def split_channels(trajectory: np.ndarray, ensemble: Ensemble) -> dict[str, np.ndarray]:
    """Returns each field of ``trajectory [time, channel, *space]``: a scalar ``[time, *space]``, a vector ``[time, component, *space]``."""
    parts, channel = {}, 0
    for field in ensemble.fields:
        n = ensemble.channels(field)
        part = trajectory[:, channel : channel + n]
        parts[field.name] = part if field.vector else part[:, 0]
        channel += n
    return parts


def decimal_float64(values: np.ndarray) -> np.ndarray:
    """Returns ``values`` as float64; float32 values become the shortest decimal that rounds to them.

    A float32 ``0.1`` is ``0.10000000149...`` in float64, and steps of such values are uniform only
    to 1e-7, not to the 1e-9 that ``Windows`` asks of a time axis; read as decimals (``0.1``) they are.
    """
    values = np.asarray(values)
    if values.dtype == np.float32:
        return np.array([float(np.format_float_scientific(v, unique=True)) for v in values.ravel()], dtype=np.float64).reshape(values.shape)
    return values.astype(np.float64)


def check_axis(values: np.ndarray, axis: str, where: str) -> np.ndarray:
    """Returns the coordinates ``values`` of ``axis`` as float64; ValueError naming ``where`` unless they increase uniformly."""
    values = decimal_float64(values)
    steps = np.diff(values)
    if values.ndim != 1 or len(values) < 2 or not (steps > 0).all() or not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        raise ValueError(
            f"{where}: coordinate {axis} must increase uniformly with at least 2 points (pdekit stores uniform grids); got "
            f"{values[:4].tolist()}..."
        )
    return values


def read_ensemble(store) -> Ensemble:
    """Returns the description of ``store``'s completed members; ValueError if it has none."""
    group = open_store(store)
    completed, _ = member_status(group)
    members = np.flatnonzero(completed)
    if len(members) == 0:
        raise ValueError(f"{store}: no completed members to export")
    fields = []
    for name in store_fields(group):
        attrs = variable(group, name).attrs
        fields.append(Field(name, str(attrs.get("long_name", name)), str(attrs.get("units", "1")), vector="components" in attrs))
    ndim = variable(group, fields[0].name).ndim - 2 - fields[0].vector
    axes = AXES[:ndim]
    parameters = []
    for p in names(group.attrs, "parameter_names"):
        attrs = variable(group, p).attrs
        parameters.append(Parameter(p, str(attrs.get("long_name", p)), str(attrs.get("units", "1"))))
    attributes = {k: group.attrs[k] for k in CARRIED_ATTRIBUTES if k in group.attrs}
    attributes["recipe"] = json_attribute(group.attrs, "recipe", {})
    return Ensemble(
        fields=tuple(fields),
        times=values(group, "time").astype(np.float64),
        coordinates={a: values(group, a).astype(np.float64) for a in axes},
        boundary_conditions={a: str(variable(group, a).attrs["boundary_condition"]) for a in axes},
        parameters=tuple(parameters),
        values={p.name: values(group, p.name).astype(np.float64)[members] for p in parameters},
        seeds=values(group, "seed").astype(np.int64)[members],
        attributes=attributes,
        members=members,
    )


def member_trajectories(store, ensemble: Ensemble) -> Iterator[np.ndarray]:
    """Yields the trajectory ``[time, channel, *space]`` float32 of each of ``ensemble.members``, one read each: never the whole store."""
    read = MemberReader(open_store(store))
    for member in ensemble.members:
        yield read(int(member), int(member) + 1)[0]


def layout_of(ensemble: Ensemble) -> Layout:
    """Returns the store layout of ``ensemble``."""
    axes = SPACE_DIMS[ensemble.ndim]
    # The grid's lengths are n * step, so that its coordinates j * L / n are the source's when they start at 0.
    lengths = tuple(len(ensemble.coordinates[a]) * float(ensemble.coordinates[a][1] - ensemble.coordinates[a][0]) for a in axes)
    return Layout(
        fields=ensemble.fields,
        grid=Grid(ensemble.shape, lengths),
        times=tuple(float(t) for t in ensemble.times),
        members=ensemble.n_members,
        parameters=ensemble.parameters,
        attributes=ensemble.attributes,
        boundary_conditions=tuple(ensemble.boundary_conditions[a] for a in ensemble.axes),
    )


def check_ensemble(ensemble: Ensemble, where: str) -> None:
    """Raises ValueError naming ``where`` if ``ensemble`` cannot become a store (names, shapes, boundary conditions)."""
    taken = [f.name for f in ensemble.fields] + [p.name for p in ensemble.parameters]
    clashes = sorted({n for n in taken if n in RESERVED or taken.count(n) > 1})
    if clashes:
        raise ValueError(f"{where}: the names {clashes} clash with each other or with a store's own variables {RESERVED}")
    if not ensemble.fields:
        raise ValueError(f"{where}: no fields to import")
    bad = {a: bc for a, bc in ensemble.boundary_conditions.items() if bc not in BOUNDARY_CONDITIONS}
    if bad or set(ensemble.boundary_conditions) != set(ensemble.axes):
        raise ValueError(
            f"{where}: boundary conditions {ensemble.boundary_conditions} must give one of {BOUNDARY_CONDITIONS} for each axis "
            f"{ensemble.axes}"
        )
    if (
        ensemble.n_members < 1
        or any(len(v) != ensemble.n_members for v in ensemble.values.values())
        or len(ensemble.seeds) != ensemble.n_members
    ):
        raise ValueError(f"{where}: every parameter and the seeds need one value per member ({ensemble.n_members})")
    if len(ensemble.times) < 1 or not (np.diff(ensemble.times) > 0).all():
        raise ValueError(f"{where}: times must increase; got {ensemble.times[:5].tolist()}...")


def write_ensemble(store, ensemble: Ensemble, trajectories: Iterable[np.ndarray], where: str) -> zarr.Group:
    """Creates ``store`` for ``ensemble``, writes each of ``trajectories [time, channel, *space]`` as the next member, and returns the
    group.

    Each member is marked completed once written, so a store whose import failed half-way holds
    only whole members and says which are missing (``pdekit validate``). A trajectory holding NaN
    or infinity is refused with its member's number.
    """
    check_ensemble(ensemble, where)
    layout = layout_of(ensemble)
    group = create_store(store, layout, ensemble.values, ensemble.seeds)
    # create_store writes x_j = j L / n; the source's coordinates may start elsewhere (cell centres,
    # [-1, 1]): keep them exactly. Values only, no metadata: the consolidated metadata stays valid.
    for axis in ensemble.axes:
        if not np.array_equal(values(group, axis), ensemble.coordinates[axis]):
            variable(group, axis)[...] = ensemble.coordinates[axis]
    written = 0
    for member, trajectory in enumerate(trajectories):
        if member >= ensemble.n_members:
            raise ValueError(f"{where}: more trajectories than the {ensemble.n_members} members described")
        if not np.isfinite(trajectory).all():
            raise ValueError(f"{where}: trajectory {member} holds NaN or infinity; a store's completed members are finite")
        try:
            write_member(group, member, trajectory)
        except StoreError as error:
            raise ValueError(f"{where}: {error}") from None
        written += 1
    if written != ensemble.n_members:
        raise ValueError(f"{where}: {written} trajectories for {ensemble.n_members} members")
    return group
