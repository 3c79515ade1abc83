"""Writing ensembles into Zarr v3 stores that follow ``pdekit.data.schema``, safely under crashes and concurrency.

Layout: the solution is chunked ``(1, time_chunk, *space)`` with one shard per member ``(1, time,
*space)``, so every member write covers whole shards. Zarr has no write locks: concurrent writers
are safe only because no two of them ever touch the same shard or chunk. Per-member parameters are
written once, at creation; the per-member flags have chunks of one member each.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import zarr

import pdekit
from pdekit.data.recipes import Recipe
from pdekit.data.schema import LONG_NAMES, SCHEMA_VERSION, SPACE_DIMS, UNITS, StoreError

# About 1 MiB of float32 per chunk: large enough that a read call's fixed cost (~1 ms in
# zarr-python) stays small against its transfer, small enough for windows of a few steps.
CHUNK_BYTES = 2**20


def _attrs(name: str) -> dict:
    return {"long_name": LONG_NAMES.get(name, name), "units": UNITS.get(name, "1")}


def time_chunk(recipe: Recipe) -> int:
    """Returns the number of time steps per chunk of the solution variable."""
    step_bytes = 4 * math.prod(recipe.stored_grid.shape)
    return max(1, min(len(recipe.times) + 1, CHUNK_BYTES // step_bytes))


def create_store(store, recipe: Recipe, parameters: dict[str, np.ndarray], seeds: np.ndarray, *, solver_name: str, scheme: str, compressors=None) -> zarr.Group:
    """Creates the empty ensemble store for ``recipe`` and returns its group; fails if one exists there."""
    grid = recipe.stored_grid
    members = recipe.members
    times = np.array([0.0, *recipe.times])
    space = SPACE_DIMS[grid.ndim]
    group = zarr.open_group(store, mode="w-", zarr_format=3)
    group.attrs.update(
        {
            "schema_version": SCHEMA_VERSION,
            "pdekit_version": pdekit.__version__,
            "Conventions": "CF-1.10",
            "title": f"pdekit ensemble {recipe.name}",
            "pde": recipe.pde,
            "solver": solver_name,
            "scheme": scheme,
            "field": recipe.field_name,
            "parameter_names": list(recipe.parameter_names),
            "recipe": recipe.to_attrs(),
        }
    )
    tc = time_chunk(recipe)
    group.create_array(
        recipe.field_name, shape=(members, len(times), *grid.shape), chunks=(1, tc, *grid.shape),
        shards=(1, len(times), *grid.shape) if tc < len(times) else None, dtype="float32", fill_value=np.nan,
        dimension_names=("member", "time", *space), compressors=compressors, attributes=_attrs(recipe.field_name),
    )

    def coordinate(name: str, values: np.ndarray, dims: tuple[str, ...], chunks=None, fill_value=None) -> None:
        array = group.create_array(
            name, shape=values.shape, dtype=values.dtype, chunks=chunks or values.shape, dimension_names=dims,
            attributes=_attrs(name), fill_value=fill_value, compressors=None,
        )
        array[...] = values

    coordinate("time", times, ("time",))
    for name, values in zip(space, grid.coordinates()):
        coordinate(name, values.numpy(), (name,))
    coordinate("member", np.arange(members, dtype=np.int64), ("member",))
    coordinate("seed", np.asarray(seeds, dtype=np.int64), ("member",))
    for name in recipe.parameter_names:
        coordinate(name, np.asarray(parameters[name], dtype=np.float64), ("member",))
    coordinate("completed", np.zeros(members, dtype=bool), ("member",), chunks=(1,), fill_value=False)
    coordinate("failed", np.zeros(members, dtype=bool), ("member",), chunks=(1,), fill_value=False)
    coordinate("failure_time", np.full(members, np.nan), ("member",), chunks=(1,), fill_value=np.nan)
    # Metadata never changes after creation (only chunks do), so xarray can open from one read.
    consolidate(store)
    return zarr.open_group(store, mode="r+")


def consolidate(store) -> None:
    """Writes the store's consolidated metadata, so that xarray opens it from one read."""
    with warnings.catch_warnings():  # zarr notes that consolidation is not yet in the v3 spec
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(store)


def open_store(store, mode: str = "r") -> zarr.Group:
    """Returns the ensemble group at ``store``; StoreError if there is none or it has another schema version."""
    try:
        group = zarr.open_group(store, mode=mode)
    except FileNotFoundError as error:
        raise StoreError(f"{store}: no Zarr ensemble there") from error
    version = group.attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(f"{store}: schema_version is {version!r}; this pdekit reads version {SCHEMA_VERSION}")
    return group


def member_status(group: zarr.Group) -> tuple[np.ndarray, np.ndarray]:
    """Returns the ``completed`` and ``failed`` flags of every member, as bool arrays."""
    return np.asarray(group["completed"][:], dtype=bool), np.asarray(group["failed"][:], dtype=bool)


def write_member(group: zarr.Group, member: int, trajectory: np.ndarray) -> None:
    """Writes one member's trajectory ``[time, *space]`` (whole shard), then marks it completed."""
    data = group[group.attrs["field"]]
    if trajectory.shape != data.shape[1:]:
        raise StoreError(f"member {member}: trajectory has shape {trajectory.shape}; the store holds {data.shape[1:]}")
    data[member] = trajectory.astype(np.float32, copy=False)
    group["completed"][member] = True


def mark_failed(group: zarr.Group, member: int, time: float) -> None:
    """Records that ``member`` blew up at ``time``; it is never marked completed."""
    group["failure_time"][member] = time
    group["failed"][member] = True
