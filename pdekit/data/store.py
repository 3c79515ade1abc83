"""Writing ensembles into Zarr v3 stores that follow ``pdekit.data.schema``, safely under crashes and concurrency.

Layout: each field is chunked ``(1, time_chunk, [component,] *space)`` with one shard per member
``(1, time, [component,] *space)``, so every member write covers whole shards. Zarr has no write
locks: concurrent writers are safe only because no two of them ever touch the same shard or chunk.
Per-member parameters are written once, at creation; the per-member flags have chunks of one
member each. In memory a member's trajectory is one array ``[time, channel, *space]``: ``write_member``
splits it into the fields and ``read_members`` stacks them back. Creation is all or nothing
(``create_store``): a process killed while creating a store leaves nothing in its way.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BytesCodec
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding

import pdekit
from pdekit.data.fields import PDES, Field, Parameter
from pdekit.data.lock import local_directory
from pdekit.data.recipes import Recipe, solver_description
from pdekit.data.schema import BOUNDARY_CONDITIONS, FLAGS, SCHEMA_VERSION, SPACE_DIMS, UPGRADE, StoreError, json_attribute, names
from pdekit.grid import Grid

# At most 4 MiB of float32 per chunk: large enough that a read call's fixed cost (~1 ms in
# zarr-python) stays small against its transfer, and that a 64² vector field's whole trajectory is
# one chunk (sharded reads of a 1.7 MB velocity member streamed at 0.70x the bytes per second of
# unsharded ones, benchmarks/streaming.py); small enough for readers of a few time steps.
CHUNK_BYTES = 4 * 2**20

Mode = Literal["r", "r+", "a", "w", "w-"]
"""How a Zarr group is opened: read only, read and write, or created (``"w-"`` refuses an existing one)."""

COORDINATE_ATTRS: dict[str, dict[str, Any]] = {
    "time": {"long_name": "time", "units": "1", "axis": "T", "standard_name": "time"},
    "x": {"long_name": "x coordinate", "units": "1", "axis": "X"},
    "y": {"long_name": "y coordinate", "units": "1", "axis": "Y"},
    "z": {"long_name": "z coordinate", "units": "1", "axis": "Z"},
    "member": {"long_name": "ensemble member index", "units": "1", "standard_name": "realization"},
    "seed": {"long_name": "random seed of the initial condition", "units": "1"},
    "completed": {"long_name": "member written completely", "units": "1", "flag_values": [0, 1], "flag_meanings": "incomplete completed"},
    "failed": {
        "long_name": "member simulation blew up",
        "units": "1",
        "flag_values": [0, 1],
        "flag_meanings": "running_or_completed failed",
    },
    "failure_time": {"long_name": "time at which the member became non-finite", "units": "1"},
}


@dataclass(frozen=True)
class Layout:
    """The shape of a store: its fields (channel order), stored grid, times, members, parameters and attributes.

    Args:
        fields: the recorded fields, in channel order.
        grid: the stored grid.
        times: the stored times, ``t = 0`` first when the initial state is stored.
        members: the number of members.
        parameters: the per-member parameters.
        attributes: ``pde``, ``solver``, ``scheme``, ``title`` and ``recipe`` (a dict, stored as JSON).
        boundary_conditions: one per spatial axis in ``x, y, z`` order, each one of
            ``schema.BOUNDARY_CONDITIONS``; empty: periodic throughout.

    Raises:
        ValueError: a boundary condition per axis is missing or unknown, or there is no member or no time.
    """

    fields: tuple[Field, ...]
    grid: Grid
    times: tuple[float, ...]
    members: int
    parameters: tuple[Parameter, ...]
    attributes: dict
    boundary_conditions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bcs = self.boundary_conditions or ("periodic",) * self.grid.ndim
        if len(bcs) != self.grid.ndim or any(bc not in BOUNDARY_CONDITIONS for bc in bcs):
            raise ValueError(f"boundary_conditions must name one of {BOUNDARY_CONDITIONS} per axis; got {bcs}")
        if self.members < 1 or len(self.times) < 1:
            raise ValueError(f"a store needs members >= 1 and at least one time; got {self.members}, {len(self.times)}")
        object.__setattr__(self, "boundary_conditions", tuple(bcs))

    @classmethod
    def of_recipe(cls, recipe: Recipe) -> Layout:
        """Returns the layout of ``recipe``'s ensemble (the stored grid, ``t = 0`` and the output times).

        The solver's class and scheme it records come from ``recipes.solver_description``.
        """
        pde = PDES[recipe.pde]
        solver, scheme = solver_description(recipe)
        return cls(
            fields=tuple(pde.field(f) for f in recipe.field_names),
            grid=recipe.stored_grid,
            times=(0.0, *recipe.times),
            members=recipe.members,
            parameters=tuple(p for p in pde.parameters if p.name in recipe.parameter_names),
            attributes={
                "pde": recipe.pde,
                "solver": solver,
                "scheme": scheme,
                "title": f"pdekit ensemble {recipe.name}",
                "recipe": recipe.to_attrs(),
            },
        )


def time_chunk(layout: Layout, field: Field) -> int:
    """Returns the number of time steps per chunk of ``field``: at most about ``CHUNK_BYTES`` each, balanced over the times.

    The chunks of a trajectory are made equal (21 times in chunks of at most 16 become two of 11),
    so the last one holds little past the array's end.
    """
    step_bytes = 4 * math.prod(layout.grid.shape) * max(1, len(field.components(layout.grid.ndim)))
    largest = max(1, min(len(layout.times), CHUNK_BYTES // step_bytes))
    return math.ceil(len(layout.times) / math.ceil(len(layout.times) / largest))


CREATING = "pdekit_creating"  # the root attribute of a store whose creation has not finished
TEMPORARY = ".creating-"  # a local store is built as <name>.creating-<host>-<pid>-<random> beside it


def local_path(store) -> Path | None:
    """Returns ``store`` as a local path (a path or a ``file://`` URL); None for another URL or a Zarr store object."""
    if not isinstance(store, (str, os.PathLike)):
        return None
    return local_directory(store)


def _zarr_address(store):
    """Returns ``store`` with a ``file://`` URL as its path: Zarr's local store makes the directories it writes into, fsspec's does not."""
    return local_path(store) if isinstance(store, str) and store.startswith("file://") else store


def store_exists(store) -> bool:
    """Returns whether a Zarr group whose creation finished is at ``store`` (what a killed ``create_store`` left is not one)."""
    try:
        group = zarr.open_group(_zarr_address(store), mode="r")
    except FileNotFoundError:  # zarr's GroupNotFoundError included
        return False
    return CREATING not in group.attrs


def create_store(store, layout: Layout, parameters: dict[str, np.ndarray], seeds: np.ndarray, *, compressors=None) -> zarr.Group:
    """Creates the empty ensemble store of ``layout`` and returns its group; FileExistsError if anything else is at ``store``.

    All or nothing, so a process killed while creating never leaves a store that blocks the next
    try. A local store (a path or a ``file://`` URL) is built under a temporary name beside it,
    ``<name>.creating-<host>-<pid>-<random>``, and renamed into place (an atomic rename); the next
    creation beside it removes the temporaries of this host's dead processes. At other URLs the
    store is written in place and its root carries the attribute ``pdekit_creating`` until the
    attributes are written, last; a store still marked so is overwritten. An empty directory counts
    as nothing there.

    Args:
        store: a local path, an fsspec URL or a Zarr store object.
        layout: what the store holds.
        parameters: parameter name -> ``[members]`` values, for every parameter of ``layout``.
        seeds: ``[members]`` initial-condition seeds.
        compressors: Zarr compressors of the fields; None: uncompressed.

    Returns:
        The new store's root group, open for writing members.

    Raises:
        FileExistsError: a Zarr store, other files or a file are already at ``store``.
    """
    path = local_path(store)
    if path is None:
        mode: Mode = "w-"
        try:
            if CREATING in zarr.open_group(store, mode="r").attrs:
                mode = "w"  # a creation that was stopped: redo it
        except FileNotFoundError:
            pass
        try:
            _write_store(store, mode, layout, parameters, seeds, compressors)
        except FileExistsError:
            raise FileExistsError(
                f"{store} already holds data (a Zarr store or other files): choose a new location, or remove it"
            ) from None
        return zarr.open_group(store, mode="r+")
    _remove_dead_temporaries(path)
    _refuse_existing(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}{TEMPORARY}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}")
    temporary.mkdir()  # not mkdtemp: the store gets the permissions the umask gives, not 0700
    try:
        _write_store(temporary, "w-", layout, parameters, seeds, compressors)
        try:
            os.replace(temporary, path)  # onto nothing or an empty directory; fails onto anything else
        except OSError as error:
            raise FileExistsError(f"{path}: something else was created there meanwhile ({error.strerror})") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return zarr.open_group(path, mode="r+")


def _refuse_existing(path: Path) -> None:
    if path.is_dir() and (path / "zarr.json").exists():
        raise FileExistsError(f"{path} already holds a Zarr store")
    if path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"{path} is a directory that holds files but no Zarr store: choose a new location, or remove it")
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a Zarr store: choose a new location")


def _remove_dead_temporaries(path: Path) -> None:
    """Removes what killed creations of ``path`` on this host left beside it; those of live processes and other hosts stay."""
    if not path.parent.is_dir():
        return
    host = socket.gethostname()
    prefix = f"{path.name}{TEMPORARY}"
    for candidate in path.parent.iterdir():
        if not candidate.name.startswith(prefix):
            continue
        owner, _, pid = candidate.name[len(prefix) :].rpartition("-")[0].rpartition("-")  # <host>-<pid>-<random>
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_store(store, mode: Mode, layout: Layout, parameters: dict[str, np.ndarray], seeds: np.ndarray, compressors) -> None:
    """Writes the empty ensemble of ``layout`` at ``store`` (opened with ``mode``): marked as being created until its attributes, written
    last."""
    grid, members, times = layout.grid, layout.members, np.asarray(layout.times, dtype=np.float64)
    space = SPACE_DIMS[grid.ndim]
    group = zarr.open_group(store, mode=mode, zarr_format=3, attributes={CREATING: True})
    attrs = dict(layout.attributes)
    per_member = " ".join(["seed", *(p.name for p in layout.parameters), *FLAGS, "failure_time"])
    for f in layout.fields:
        components = f.components(grid.ndim)
        inner = (len(components),) if components else ()
        tc = time_chunk(layout, f)
        # A shard holds whole chunks: round it up to a multiple of the chunk (Zarr allows a shard past the array's end).
        shard_times = math.ceil(len(times) / tc) * tc
        group.create_array(
            f.name,
            shape=(members, len(times), *inner, *grid.shape),
            chunks=(1, tc, *inner, *grid.shape),
            shards=(1, shard_times, *inner, *grid.shape) if tc < len(times) else None,
            dtype="float32",
            fill_value=np.nan,
            dimension_names=("member", "time", *(("component",) if components else ()), *space),
            compressors=compressors,
            attributes={
                "long_name": f.long_name,
                "units": f.units,
                "coordinates": per_member,
                **({"components": " ".join(components)} if components else {}),
            },
        )

    def coordinate(name: str, values: np.ndarray, dims: tuple[str, ...], attributes: dict, chunks=None, fill_value=None) -> None:
        array = group.create_array(
            name,
            shape=values.shape,
            dtype=values.dtype,
            chunks=chunks or values.shape,
            dimension_names=dims,
            attributes=attributes,
            fill_value=fill_value,
            compressors=None,
        )
        array[...] = values

    coordinate("time", times, ("time",), COORDINATE_ATTRS["time"])
    bcs = dict(zip(("x", "y", "z"), layout.boundary_conditions, strict=False))  # names for the first ndim axes
    for name, values in zip(space, grid.coordinates(), strict=True):
        coordinate(name, values.numpy(), (name,), {**COORDINATE_ATTRS[name], "boundary_condition": bcs[name]})
    coordinate("member", np.arange(members, dtype=np.int64), ("member",), COORDINATE_ATTRS["member"])
    coordinate("seed", np.asarray(seeds, dtype=np.int64), ("member",), COORDINATE_ATTRS["seed"])
    for p in layout.parameters:
        coordinate(p.name, np.asarray(parameters[p.name], dtype=np.float64), ("member",), {"long_name": p.long_name, "units": p.units})
    for flag in FLAGS:
        coordinate(flag, np.zeros(members, dtype=np.int8), ("member",), COORDINATE_ATTRS[flag], chunks=(1,), fill_value=0)
    coordinate("failure_time", np.full(members, np.nan), ("member",), COORDINATE_ATTRS["failure_time"], chunks=(1,), fill_value=np.nan)
    # One write replaces the creation marker by the store's attributes.
    group.attrs.put(
        {
            "schema_version": SCHEMA_VERSION,
            "pdekit_version": pdekit.__version__,
            "Conventions": "CF-1.10",
            **{k: v for k, v in attrs.items() if k != "recipe"},
            "fields": " ".join(f.name for f in layout.fields),
            "parameter_names": " ".join(p.name for p in layout.parameters),
            "recipe": json.dumps(attrs.get("recipe", {})),
        }
    )
    # Metadata never changes after creation (only chunks do), so xarray can open from one read.
    consolidate(store)


def consolidate(store) -> None:
    """Writes the store's consolidated metadata, so that xarray opens it from one read."""
    with warnings.catch_warnings():  # zarr notes that consolidation is not yet in the v3 spec
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(store)


def open_store(store, mode: Mode = "r") -> zarr.Group:
    """Returns the ensemble group at ``store``.

    Args:
        store: a local path, an fsspec URL (``file://``, ``memory://``, ``s3://``, ...) or a Zarr store object.
        mode: ``"r"`` to read, ``"r+"`` to write members into an existing store.

    Returns:
        The store's root group.

    Raises:
        StoreError: there is no Zarr group at ``store``, its creation was stopped before it finished,
            or it has another schema version (version 1: the message says how to upgrade it).
    """
    try:
        group = zarr.open_group(_zarr_address(store), mode=mode)
    except FileNotFoundError as error:  # zarr's GroupNotFoundError included
        raise StoreError(f"{store}: no Zarr ensemble there") from error
    if CREATING in group.attrs:
        raise StoreError(f"{store}: its creation was stopped before it finished; create it again (pdekit generate redoes it)")
    version = group.attrs.get("schema_version")
    if version == 1:
        raise StoreError(f"{store}: schema_version is 1, from an older pdekit; {UPGRADE}")
    if version != SCHEMA_VERSION:
        raise StoreError(f"{store}: schema_version is {version!r}; this pdekit reads version {SCHEMA_VERSION}")
    return group


def variable(group: zarr.Group, name: str) -> zarr.Array:
    """Returns the array ``name`` of a store's group; StoreError if the group holds no array by that name."""
    item = group.get(name)
    if not isinstance(item, zarr.Array):
        raise StoreError(f"{group.store_path}: no variable {name!r}")
    return item


def values(group: zarr.Group, name: str) -> np.ndarray:
    """Returns the whole of the store's array ``name`` (a coordinate or a per-member variable) as a numpy array."""
    return np.asarray(variable(group, name)[...])


def store_fields(group: zarr.Group) -> list[str]:
    """Returns the names of the store's fields, in channel order."""
    return names(group.attrs, "fields")


def _is_vector(array) -> bool:
    return "component" in (array.metadata.dimension_names or ())


def field_channels(group: zarr.Group) -> list[tuple[str, int]]:
    """Returns ``(field, number of channels)`` of every field in channel order: 1 for a scalar, its components for a vector."""
    result = []
    for name in store_fields(group):
        array = variable(group, name)
        result.append((name, array.shape[2] if _is_vector(array) else 1))
    return result


def channel_names(group: zarr.Group) -> tuple[str, ...]:
    """Returns the store's channel names: a scalar field's name, or ``name_x, name_y, ...`` per vector component."""
    result = []
    for name in store_fields(group):
        components = names(variable(group, name).attrs, "components")
        result += [f"{name}_{c}" for c in components] or [name]
    return tuple(result)


def space_shape(group: zarr.Group) -> tuple[int, ...]:
    """Returns the stored grid's shape (the fields' spatial axes)."""
    first = variable(group, store_fields(group)[0])
    return tuple(first.shape[3:] if _is_vector(first) else first.shape[2:])


def member_status(group: zarr.Group) -> tuple[np.ndarray, np.ndarray]:
    """Returns the ``completed`` and ``failed`` flags of every member, as bool arrays."""
    return values(group, "completed") != 0, values(group, "failed") != 0


def read_members(group: zarr.Group, start: int, stop: int, *, direct: bool = True) -> np.ndarray:
    """Returns the trajectories of members ``start .. stop - 1``, channel-stacked: ``[n, time, channel, *space]`` float32.

    ``MemberReader(group, direct=direct)(start, stop)``: see there; a reader kept between calls (as
    ``Windows`` keeps one) saves looking the fields up again.
    """
    return MemberReader(group, direct=direct)(start, stop)


class MemberReader:
    """Reads members' channel-stacked trajectories ``[n, time, channel, *space]`` from an ensemble's fields, looked up once.

    A field of a local store whose chunks are plain little-endian bytes (pdekit's default: uncompressed,
    unsharded) is read straight from its chunk files into the result; any other field (compressed,
    sharded, remote) through one Zarr call, which reads its members' chunks or shards concurrently.
    Both give the same bits: the direct read is what zarr-python's bytes codec does, without its event
    loop's fixed cost per call (over 80% of a 4-member read, benchmarks/RESULTS.md).

    Args:
        group: the ensemble's root group.
        direct: read plain chunk files directly where they allow it; False reads every field through Zarr.
    """

    def __init__(self, group: zarr.Group, *, direct: bool = True):
        self.fields = []
        for name in store_fields(group):
            array = variable(group, name)
            self.fields.append((array, chunk_directory(group, array) if direct else None, _is_vector(array)))

    def __call__(self, start: int, stop: int) -> np.ndarray:
        """Returns the trajectories of members ``start .. stop - 1``: ``[n, time, channel, *space]``."""
        blocks = []
        for array, directory, vector in self.fields:
            block = read_chunk_files(array, directory, start, stop) if directory is not None else np.asarray(array[start:stop])
            blocks.append(block if vector else block[:, :, None])
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2)


def chunk_directory(group: zarr.Group, array: zarr.Array) -> Path | None:
    """Returns the local directory holding ``array``'s chunk files when they are plain bytes that numpy reads as they are, else None.

    That is: a Zarr v3 array in a local directory store, unsharded, whose only codec is ``bytes`` in the
    byte order of the array's dtype, with the default ``c/i/j/...`` chunk keys.
    """
    store = group.store
    metadata = array.metadata
    if not isinstance(store, zarr.storage.LocalStore) or metadata.zarr_format != 3 or array.shards is not None:
        return None
    codecs = metadata.codecs
    if len(codecs) != 1 or not isinstance(codecs[0], BytesCodec):
        return None
    endian = getattr(codecs[0].endian, "value", codecs[0].endian)  # the file's byte order; None for one-byte types
    order = array.dtype.byteorder
    if order == "=":
        order = "<" if np.little_endian else ">"
    if order != "|" and endian != {"<": "little", ">": "big"}[order]:
        return None
    encoding = metadata.chunk_key_encoding
    if not isinstance(encoding, DefaultChunkKeyEncoding) or encoding.separator != "/":
        return None
    return Path(store.root) / array.path


def read_chunk_files(array: zarr.Array, directory: Path, start: int, stop: int) -> np.ndarray:
    """Returns ``array[start:stop]`` read from the chunk files under ``directory`` (see ``chunk_directory``); missing chunks hold the
    fill value.

    ``array`` is chunked one member per chunk along its first axis and whole along its space (and
    component) axes, as pdekit writes its fields; only the time axis may span several chunks.

    Raises:
        StoreError: a chunk file's size is not its chunk's.
    """
    chunks, shape = array.chunks, array.shape
    start, stop, _ = slice(start, stop).indices(shape[0])  # clipped as zarr clips a slice
    stop = max(start, stop)
    if chunks[0] != 1 or tuple(chunks[2:]) != tuple(shape[2:]):
        return np.asarray(array[start:stop])
    steps = chunks[1]
    block = np.empty((stop - start, *shape[1:]), dtype=array.dtype)
    scratch = np.empty((steps, *shape[2:]), dtype=array.dtype) if shape[1] % steps else block[:0]  # for the last, partial chunk
    inner = "/0" * (len(shape) - 2)  # the space (and component) axes are one chunk each
    for i, member in enumerate(range(start, stop)):
        for j, first in enumerate(range(0, shape[1], steps)):
            path = f"{directory}/c/{member}/{j}{inner}"
            destination = block[i, first : first + steps]
            whole = destination.shape[0] == steps
            target = destination if whole else scratch
            try:
                with open(path, "rb", buffering=0) as file:
                    size = file.readinto(target.data.cast("B"))
            except FileNotFoundError:
                destination[...] = array.fill_value
                continue
            if size != target.nbytes:
                raise StoreError(f"{path}: a chunk file of {target.nbytes} bytes was expected; it holds {size}")
            if not whole:
                destination[...] = scratch[: destination.shape[0]]
    return block


def write_member(group: zarr.Group, member: int, trajectory: np.ndarray) -> None:
    """Writes one member's channel-stacked trajectory ``[time, channel, *space]`` into its fields (whole shards), then marks it
    completed."""
    layout = field_channels(group)
    total = sum(c for _, c in layout)
    expected = (variable(group, layout[0][0]).shape[1], total, *space_shape(group))
    if trajectory.shape != expected:
        raise StoreError(f"member {member}: trajectory has shape {trajectory.shape}; the store holds [time, channel, *space] = {expected}")
    trajectory = trajectory.astype(np.float32, copy=False)
    channel = 0
    for name, channels in layout:
        part = trajectory[:, channel : channel + channels]
        array = variable(group, name)
        array[member] = part if _is_vector(array) else part[:, 0]
        channel += channels
    variable(group, "completed")[member] = 1


def mark_failed(group: zarr.Group, member: int, time: float) -> None:
    """Records that ``member`` blew up at ``time``; it is never marked completed."""
    variable(group, "failure_time")[member] = time
    variable(group, "failed")[member] = 1


def upgrade_store(store) -> bool:
    """Rewrites a schema-version-1 store's metadata and flags as version 2, in place; returns False if it already is version 2.

    The field data is not touched (a version-1 store holds one scalar field, laid out as version 2
    lays a scalar). The flags' values are journalled in an attribute before their arrays are
    recreated as int8, so an upgrade killed half-way is finished by running it again.

    Args:
        store: the store to upgrade (a path or an fsspec URL).

    Returns:
        True if it was upgraded, False if it already was version 2.

    Raises:
        StoreError: the store has a schema version other than 1 or 2.
    """
    group = zarr.open_group(store, mode="r+")
    attrs: dict[str, Any] = dict(group.attrs)
    if attrs.get("schema_version") == SCHEMA_VERSION:
        return False
    if attrs.get("schema_version") != 1:
        raise StoreError(f"{store}: schema_version is {attrs.get('schema_version')!r}; only version 1 stores can be upgraded")
    field = str(attrs.get("field") or names(attrs, "fields")[0])
    recipe = json_attribute(attrs, "recipe", {})
    recipe.setdefault("fields", [field])
    journal = json_attribute(attrs, "upgrade_flags") or {flag: (values(group, flag) != 0).astype(int).tolist() for flag in FLAGS}
    group.attrs["upgrade_flags"] = json.dumps(journal)
    for flag in FLAGS:
        flags = np.asarray(journal[flag], dtype=np.int8)
        array = group.create_array(
            flag,
            shape=flags.shape,
            chunks=(1,),
            dtype="int8",
            fill_value=0,
            dimension_names=("member",),
            attributes=COORDINATE_ATTRS[flag],
            compressors=None,
            overwrite=True,
        )
        array[...] = flags
    params = names(attrs, "parameter_names")
    pde = PDES.get(attrs.get("pde", ""))
    known = {p.name: p for p in pde.parameters} if pde else {}
    for name in params:
        variable(group, name).attrs.update({"long_name": known[name].long_name if name in known else name, "units": "1"})
    for name in ("time", "member", "seed", "failure_time"):
        variable(group, name).attrs.update(COORDINATE_ATTRS[name])
    ndim = variable(group, field).ndim - 2
    for axis in SPACE_DIMS[ndim]:
        variable(group, axis).attrs.update({**COORDINATE_ATTRS[axis], "boundary_condition": "periodic"})
    variable(group, field).attrs["coordinates"] = " ".join(["seed", *params, *FLAGS, "failure_time"])
    saved = json_attribute(attrs, "normalization", {}).get(field)
    updates: dict[str, Any] = {"fields": field, "parameter_names": " ".join(params), "recipe": json.dumps(recipe)}
    if saved is not None:
        updates["normalization"] = json.dumps({"channels": [field], "mean": [float(saved["mean"])], "std": [float(saved["std"])]})
    group.attrs.update(updates)
    for key in ("field", "upgrade_flags"):
        group.attrs.pop(key, None)
    group.attrs["schema_version"] = SCHEMA_VERSION  # last: a store is version 2 only once all of it is
    consolidate(store)
    return True
