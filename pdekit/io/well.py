"""The Well's HDF5 format (Ohana et al., "The Well", NeurIPS 2024 Datasets and Benchmarks): export a store to it, import from it.

A Well dataset is a directory ``<dataset>/data/<split>/*.hdf5`` (splits ``train``, ``valid``,
``test``) beside ``<dataset>/stats.yaml``, the per-field statistics its ``WellDataset`` normalises
with. Each file follows The Well's ``docs/data_format.md``; the mapping to a pdekit store:

===========================================  ==================================================
The Well                                      pdekit store
===========================================  ==================================================
``t0_fields/<f>  [traj, time, x, (y, z)]``    scalar field ``<f>(member, time, [z,] [y,] x)``
``t1_fields/<f>  [traj, time, x, .., D]``     vector field ``<f>(member, time, component, ...)``
``t2_fields``                                 refused (pdekit has no rank-2 fields)
``dimensions/time``, ``x``, ``y``, ``z``      coordinates ``time``, ``x``, ``y``, ``z``
``boundary_conditions/*`` ``bc_type``         ``boundary_condition`` of each axis
``scalars/<p>`` (not time-varying)            per-member parameter ``<p>`` (``sample_varying``, ``[traj]``, if it varies)
``@simulation_parameters``, ``@<p>``          the parameters' names; the value of each shared by all members
``@n_trajectories``                           the completed members
``pdekit/seeds``, ``pdekit/members``          ``seed``; the store index of each trajectory
``@pdekit_attributes``                        ``pde``, ``solver``, ``scheme``, ``title``, ``recipe`` (JSON)
===========================================  ==================================================

Array axes differ: The Well lays space out as ``dimensions@spatial_dims`` (``x, y, z``), pdekit as
``(z, y, x)``; vector components are ``x, y, z`` in both. Only completed members are exported.
What a store cannot hold (rank-2 tensor fields, fields constant in time or over trajectories,
time-varying scalars, a boundary whose two ends differ) is refused on import with its name, and
imported only when left out on purpose (``exclude=``). Values are float32 in both; pdekit writes
times, coordinates and parameters as float64, so a store comes back bit for bit. Per-member arrays
are datasets, never attributes (an object header holds 64 KiB: about 8 000 values).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import yaml
import zarr

import pdekit
from pdekit.data.fields import AXES, Field, Parameter
from pdekit.data.store import time_chunk
from pdekit.io.ensemble import (
    Ensemble,
    check_axis,
    decimal_float64,
    layout_of,
    member_trajectories,
    read_ensemble,
    reverse_space,
    split_channels,
    write_ensemble,
)
from pdekit.io.formats import (
    attribute_text,
    h5py_module,
    hdf5_files,
    is_hdf5,
    read_pdekit_array,
    replaced_when_written,
    write_pdekit_arrays,
)

SPLITS = ("train", "valid", "test")
# The Well's bc_type values, in upper case as its BoundaryCondition enum names them.
WELL_BOUNDARY = {"periodic": "PERIODIC", "wall": "WALL", "open": "OPEN"}
STATISTICS = ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(list(values), dtype=h5py_module().string_dtype())


def _flags(dataset, *, sample: bool, time: bool) -> None:
    dataset.attrs["sample_varying"] = sample
    dataset.attrs["time_varying"] = time


def dataset_name(store, ensemble: Ensemble) -> str:
    """Returns the name a store's export goes by: its recipe's name, else the store's folder name."""
    return str(ensemble.attributes.get("recipe", {}).get("name") or Path(str(store).rstrip("/")).stem)


def _write_header(file, ensemble: Ensemble, name: str) -> None:
    """Writes the root attributes, ``dimensions``, ``boundary_conditions`` and ``scalars`` of a Well file."""
    varying = set(ensemble.varying_parameters())
    file.attrs.update(
        {
            "dataset_name": name,
            "grid_type": "cartesian",
            "n_spatial_dims": ensemble.ndim,
            "n_trajectories": ensemble.n_members,
            "simulation_parameters": _strings([p.name for p in ensemble.parameters]),
            "pdekit_version": pdekit.__version__,
            "pdekit_attributes": json.dumps(ensemble.attributes),
        }
    )
    # A parameter shared by all members is also a file attribute, as The Well keeps one value per
    # file; one that varies is in scalars/<p> only (sample_varying), which is what WellDataset reads.
    for p in ensemble.parameters:
        if p.name not in varying:
            file.attrs[p.name] = float(ensemble.values[p.name][0])
    write_pdekit_arrays(file, seeds=ensemble.seeds.astype(np.int64), members=ensemble.members.astype(np.int64))
    dimensions = file.create_group("dimensions")
    dimensions.attrs["spatial_dims"] = _strings(ensemble.axes)
    _flags(dimensions.create_dataset("time", data=ensemble.times), sample=False, time=True)
    for axis in ensemble.axes:
        _flags(dimensions.create_dataset(axis, data=ensemble.coordinates[axis]), sample=False, time=False)
    boundaries = file.create_group("boundary_conditions")
    for axis in ensemble.axes:
        bc = ensemble.boundary_conditions[axis]
        group = boundaries.create_group(f"{axis}_{bc}")
        group.attrs.update({"associated_dims": _strings([axis]), "associated_fields": _strings([]), "bc_type": WELL_BOUNDARY[bc]})
        _flags(group, sample=False, time=False)
        mask = np.zeros(len(ensemble.coordinates[axis]), dtype=bool)
        mask[[0, -1]] = True  # the boundary is both ends of the axis
        group.create_dataset("mask", data=mask)
    scalars = file.create_group("scalars")
    scalars.attrs["field_names"] = _strings([p.name for p in ensemble.parameters])
    for p in ensemble.parameters:
        values = ensemble.values[p.name]
        dataset = scalars.create_dataset(p.name, data=values if p.name in varying else np.float64(values[0]))
        _flags(dataset, sample=p.name in varying, time=False)
        dataset.attrs.update({"long_name": p.long_name, "units": p.units})


def _create_fields(file, ensemble: Ensemble) -> dict:
    """Creates the ``t0_fields``, ``t1_fields`` and (empty) ``t2_fields`` datasets; returns field name -> dataset."""
    shape = tuple(len(ensemble.coordinates[a]) for a in ensemble.axes)  # x, y, z
    layout = layout_of(ensemble)
    datasets = {}
    for order in range(3):
        group = file.create_group(f"t{order}_fields")
        fields = [f for f in ensemble.fields if int(f.vector) == order]
        group.attrs["field_names"] = _strings([f.name for f in fields])
        for f in fields:
            tensor = (ensemble.ndim,) * order
            chunk = time_chunk(layout, f)  # at most CHUNK_BYTES a chunk, as the store's own chunks
            dataset = group.create_dataset(
                f.name,
                shape=(ensemble.n_members, len(ensemble.times), *shape, *tensor),
                dtype="float32",
                chunks=(1, chunk, *shape, *tensor),
            )
            dataset.attrs.update({"dim_varying": np.ones(ensemble.ndim, dtype=bool), "long_name": f.long_name, "units": f.units})
            _flags(dataset, sample=True, time=True)
            datasets[f.name] = dataset
    return datasets


def to_well(part: np.ndarray, vector: bool) -> np.ndarray:
    """Returns one member's field as The Well lays it out: ``[time, *space]`` or ``[time, component, *space]`` (z, y, x) -> ``[time, x, y,
    z, (component)]``."""
    if vector:
        return reverse_space(np.moveaxis(part, 1, -1), leading=1, trailing=1)
    return reverse_space(part, leading=1)


def from_well(values: np.ndarray, vector: bool) -> np.ndarray:
    """Returns one trajectory of a Well field ``[time, x, y, z, (component)]`` as pdekit channels ``[time, channel, z, y, x]``."""
    if vector:
        return np.moveaxis(reverse_space(values, leading=1, trailing=1), -1, 1)
    return reverse_space(values, leading=1)[:, None]


def export_well(store, directory, *, split: str = "train", name: str | None = None) -> list[Path]:
    """Writes the completed members of ``store`` as a Well dataset in ``directory``; returns the files written.

    The file is ``directory/data/<split>/<name>.hdf5`` (``name``: the recipe's), written one member
    at a time to ``<name>.hdf5.partial`` and renamed when whole (incomplete and failed members are
    left out; ``pdekit/members`` lists the store indices of those written). ``directory/stats.yaml``
    (``mean``, ``std``, ``rms`` and their ``_delta`` versions per field, as
    ``WellDataset(use_normalization=True)`` reads them) is rewritten from every file of the training split; a directory without one gets its
    statistics
    from the split exported. Load the result with
    ``WellDataset(path=directory, well_split_name=split, normalization_path=directory/"stats.yaml")``.

    Args:
        store: the Zarr ensemble: a local path or an fsspec URL.
        directory: the Well dataset folder to write into.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        name: the file's stem; None for the store's recipe name (else its folder name).

    Returns:
        The files written: the HDF5 file, then ``stats.yaml`` when it was rewritten.

    Raises:
        ValueError: ``split`` is unknown, or the store has no completed members.
        FileExistsError: the HDF5 file exists.
        ImportError: h5py is not installed.
    """
    h5py = h5py_module()
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    ensemble = read_ensemble(store)
    name = name or dataset_name(store, ensemble)
    directory = Path(directory)
    folder = directory / "data" / split
    path = folder / f"{name}.hdf5"
    if path.exists():
        raise FileExistsError(f"{path} exists; export elsewhere or pass another name")
    folder.mkdir(parents=True, exist_ok=True)
    with replaced_when_written([path]) as (partial,), h5py.File(partial, "w") as file:
        _write_header(file, ensemble, name)
        datasets = _create_fields(file, ensemble)
        vectors = {f.name: f.vector for f in ensemble.fields}
        for i, trajectory in enumerate(member_trajectories(store, ensemble)):
            for field, part in split_channels(trajectory, ensemble).items():
                datasets[field][i] = to_well(part, vectors[field])
    written = [path]
    statistics_path = directory / "stats.yaml"
    if split == "train" or not statistics_path.exists():
        statistics = yaml.safe_dump(well_statistics(hdf5_files(directory / "data" / "train") or [path]))
        with replaced_when_written([statistics_path]) as (partial,):
            partial.write_text(statistics)
        written.append(statistics_path)
    return written


def _moments(values: np.ndarray, order: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Returns ``(count, mean, mean square)`` of ``values`` over every axis but its ``order`` trailing tensor axes, in float64."""
    values = values.astype(np.float64)
    axes = tuple(range(values.ndim - order))
    return math.prod(values.shape[: values.ndim - order]), values.mean(axis=axes), (values**2).mean(axis=axes)


def _combine(parts: list[tuple[int, np.ndarray, np.ndarray]]) -> dict[str, object]:
    counts = np.array([c for c, _, _ in parts], dtype=np.float64)
    weights = counts / counts.sum()
    mean = sum(w * m for w, (_, m, _) in zip(weights, parts, strict=True))
    square = sum(w * s for w, (_, _, s) in zip(weights, parts, strict=True))
    std = np.sqrt(np.maximum(square - mean**2, 0.0))
    # a float for a scalar field, a list per component for a vector
    return {name: np.asarray(value).tolist() for name, value in (("mean", mean), ("std", std), ("rms", np.sqrt(square)))}


def well_statistics(files: Sequence[Path]) -> dict:
    """Returns The Well's ``stats.yaml`` contents for ``files``: per field, ``mean``, ``std``, ``rms`` and those of its one-step change
    (``_delta``).

    Moments are over trajectories, times and points (per component for a vector field, as The
    Well's ``compute_statistics`` script takes them), read one trajectory at a time and combined
    exactly as mixture moments.

    Args:
        files: Well HDF5 files.

    Returns:
        ``{statistic: {field: value}}`` for the statistics ``mean``, ``std``, ``rms``, ``mean_delta``,
        ``std_delta``, ``rms_delta``; a value is a float for a scalar field, a list per component
        for a vector field.

    Raises:
        ImportError: h5py is not installed.
    """
    h5py = h5py_module()
    values: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    deltas: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for path in files:
        with h5py.File(path, "r") as file:
            for order in range(3):
                group = file[f"t{order}_fields"]
                for name in group.attrs["field_names"]:
                    dataset = group[name]
                    blocks = range(dataset.shape[0]) if dataset.attrs["sample_varying"] else [()]
                    for index in blocks:
                        block = dataset[index]
                        values.setdefault(name, []).append(_moments(block, order))
                        if dataset.attrs["time_varying"] and block.shape[0] > 1:
                            deltas.setdefault(name, []).append(_moments(np.diff(block.astype(np.float64), axis=0), order))
    statistics: dict[str, dict[str, object]] = {key: {} for key in STATISTICS}
    for name, parts in values.items():
        for key, value in _combine(parts).items():
            statistics[key][name] = value
    for name, parts in deltas.items():
        for key, value in _combine(parts).items():
            statistics[f"{key}_delta"][name] = value
    return statistics


def well_files(source, split: str = "train", name: str | None = None) -> list[Path]:
    """Returns the HDF5 files of a Well source, sorted as ``WellDataset`` sorts them.

    ``source`` is one file, a folder of files, or a dataset folder holding ``data/<split>/``;
    with ``name``, the dataset ``source/<name>`` of a Well base folder (``well_base_path``).
    """
    source = Path(source)
    if name:
        source = source / name
    if is_hdf5(source):
        return [source]
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    files = hdf5_files(source / "data" / split) or hdf5_files(source)
    if not files:
        raise FileNotFoundError(f"{source}: no *.hdf5 or *.h5 files there nor in {source / 'data' / split}")
    return files


def _boundary_conditions(file, where: str) -> dict[str, str]:
    """Returns each axis's pdekit boundary condition from a Well file's ``boundary_conditions`` group.

    An axis no group names is open, as ``WellDataset`` reads it. A boundary over several axes, or
    an axis whose two ends differ, has no pdekit equivalent (one condition per axis): refused.
    """
    spatial = [attribute_text(d) for d in file["dimensions"].attrs["spatial_dims"]]
    ends: dict[str, list[str | None]] = {axis: [None, None] for axis in spatial}
    known = {v: k for k, v in WELL_BOUNDARY.items()}
    for key, group in file["boundary_conditions"].items():
        dims = [attribute_text(d) for d in np.atleast_1d(group.attrs["associated_dims"])]
        kind = attribute_text(group.attrs["bc_type"]).upper()
        if len(dims) != 1 or dims[0] not in ends or kind not in known:
            raise ValueError(
                f"{where}: boundary_conditions/{key} ({kind} on {dims}) is not one of {sorted(known)} on one axis; pdekit keeps one "
                "condition per axis"
            )
        mask = np.asarray(group["mask"][:], dtype=bool)
        for end, index in ((0, 0), (1, -1)):
            if mask[index]:
                if ends[dims[0]][end] not in (None, known[kind]):
                    raise ValueError(f"{where}: axis {dims[0]} has two boundary conditions at one end")
                ends[dims[0]][end] = known[kind]
    result = {}
    for axis, (low, high) in ends.items():
        low, high = low or "open", high or "open"
        if low != high:
            raise ValueError(f"{where}: axis {axis} is {low} at one end and {high} at the other; pdekit keeps one condition per axis")
        result[axis] = low
    return result


def _file_ensemble(file, path: Path, exclude: set[str]) -> tuple[Ensemble, list[tuple[str, bool]]]:
    """Returns the description of one Well file and its fields to read, ``(name, vector)`` in channel order (t0 then t1, as ``WellDataset``
    orders them)."""
    where = str(path)
    grid_type = attribute_text(file.attrs.get("grid_type", "cartesian"))
    if grid_type != "cartesian":
        raise ValueError(f"{where}: grid_type is {grid_type!r}; pdekit stores Cartesian grids only")
    spatial = tuple(attribute_text(d) for d in file["dimensions"].attrs["spatial_dims"])
    ndim = len(spatial)
    if spatial != AXES[:ndim]:
        raise ValueError(f"{where}: spatial_dims are {list(spatial)}; pdekit's axes are {list(AXES[:ndim])} (in array order)")
    n = int(file.attrs["n_trajectories"])
    dimensions = file["dimensions"]
    coordinates = {}
    for axis in spatial:
        if dimensions[axis].attrs.get("sample_varying", False) or dimensions[axis].attrs.get("time_varying", False):
            raise ValueError(f"{where}: coordinate {axis} varies between trajectories or in time; pdekit stores one grid")
        coordinates[axis] = check_axis(dimensions[axis][:], axis, where)
    times = np.atleast_2d(dimensions["time"][:])
    if not (times == times[0]).all():
        raise ValueError(f"{where}: dimensions/time differs between trajectories; pdekit stores one time axis")
    times = decimal_float64(times[0])
    shape = tuple(len(coordinates[a]) for a in spatial)
    fields, readers, refused = [], [], []
    for order in range(3):
        group = file[f"t{order}_fields"]
        for name in map(attribute_text, group.attrs["field_names"]):
            if name in exclude:
                continue
            dataset = group[name]
            expected = (n, len(times), *shape, *(ndim,) * order)
            if order == 2:
                refused.append(f"{name} (a rank-2 tensor field)")
            elif not (dataset.attrs["sample_varying"] and dataset.attrs["time_varying"]):
                refused.append(f"{name} (constant {'over trajectories' if dataset.attrs['time_varying'] else 'in time'})")
            elif not np.all(dataset.attrs.get("dim_varying", True)) or dataset.shape != expected:
                refused.append(f"{name} (shape {dataset.shape}, not {expected})")
            else:
                fields.append(
                    Field(
                        name,
                        attribute_text(dataset.attrs.get("long_name", name)),
                        attribute_text(dataset.attrs.get("units", "1")),
                        vector=order == 1,
                    )
                )
                readers.append((f"t{order}_fields/{name}", order == 1))
    parameters, values = [], {}
    scalars = file["scalars"]
    for name in map(attribute_text, scalars.attrs["field_names"]):
        if name in exclude:
            continue
        dataset = scalars[name]
        if dataset.attrs["time_varying"]:
            refused.append(f"{name} (a time-varying scalar)")
            continue
        value = decimal_float64(np.asarray(dataset[()])).ravel()
        if value.size != (n if dataset.attrs["sample_varying"] else 1):
            refused.append(f"{name} (a scalar of shape {dataset.shape})")
            continue
        parameters.append(
            Parameter(name, attribute_text(dataset.attrs.get("long_name", name)), attribute_text(dataset.attrs.get("units", "1")))
        )
        values[name] = np.broadcast_to(value, (n,)).copy()
    for name in map(attribute_text, file.attrs.get("simulation_parameters", [])):
        if name not in values and name not in exclude and name in file.attrs:
            value = decimal_float64(np.asarray(file.attrs[name])).ravel()
            if value.size not in (1, n):
                refused.append(f"{name} (an attribute of {value.size} values for {n} trajectories)")
                continue
            parameters.append(Parameter(name, name))
            values[name] = np.broadcast_to(value, (n,)).copy()
    if refused:
        raise ValueError(
            f"{where}: a pdekit store cannot hold {', '.join(refused)}; leave them out on purpose with exclude=[...] (pdekit import "
            "--exclude NAME)"
        )
    seeds = read_pdekit_array(file, "seeds", n, where)
    seeds = np.full(n, -1, dtype=np.int64) if seeds is None else seeds.astype(np.int64)
    if "pdekit_attributes" in file.attrs:
        attributes = json.loads(attribute_text(file.attrs["pdekit_attributes"]))
    else:
        dataset = attribute_text(file.attrs.get("dataset_name", path.stem))
        attributes = {
            "pde": dataset,
            "solver": "unknown",
            "scheme": "unknown",
            "title": f"{dataset}, imported from The Well",
            "recipe": {"name": dataset, "source": "the_well"},
        }
    ensemble = Ensemble(
        fields=tuple(fields),
        times=times,
        coordinates=coordinates,
        boundary_conditions=_boundary_conditions(file, where),
        parameters=tuple(parameters),
        values=values,
        seeds=seeds,
        attributes=attributes,
        members=np.arange(n),
    )
    return ensemble, readers


def _same_shape(first: Ensemble, other: Ensemble, where: str) -> None:
    checks = {
        "fields": ([f.name for f in first.fields], [f.name for f in other.fields]),
        "parameters": ([p.name for p in first.parameters], [p.name for p in other.parameters]),
        "boundary conditions": (first.boundary_conditions, other.boundary_conditions),
        "grid": ({a: c.tolist() for a, c in first.coordinates.items()}, {a: c.tolist() for a, c in other.coordinates.items()}),
        "times": (first.times.tolist(), other.times.tolist()),
    }
    for what, (a, b) in checks.items():
        if a != b:
            raise ValueError(f"{where}: its {what} differ from the first file's ({b} against {a}); one store holds one ensemble")


def import_well(source, store, *, split: str = "train", name: str | None = None, exclude: Sequence[str] = ()) -> zarr.Group:
    """Creates the Zarr ensemble ``store`` from Well data and returns its group.

    ``source`` is a Well file, a folder of them, or a dataset folder (``data/<split>/``); with
    ``name``, the dataset ``source/<name>``. The files' trajectories become members in file order
    (sorted by path, as ``WellDataset`` reads them), each read with one h5py slice per field and
    written before the next is read: the source is never held in memory. Parameters are the
    scalars that do not vary in time (per trajectory or per file); ``exclude`` names fields or
    scalars to leave out, which is how what a store cannot hold is imported without them (it is
    refused otherwise). ``stats.yaml`` is not read: ``pdekit train`` computes its own statistics.

    Args:
        source: a Well file, a folder of them, or a dataset folder.
        store: the Zarr ensemble to create: a local path or an fsspec URL.
        split: the split folder read from a dataset folder: ``"train"``, ``"valid"`` or ``"test"``.
        name: the dataset ``source/<name>`` of a Well base folder; None for ``source`` itself.
        exclude: fields or scalars to leave out, by name.

    Returns:
        The new store's root group.

    Raises:
        FileNotFoundError: ``source`` holds no HDF5 files.
        ValueError: a file is not in The Well's layout, holds what a store cannot (naming it), the
            files disagree on fields, parameters, grid or times, ``exclude`` names what no file
            holds, or a trajectory is not finite.
        ImportError: h5py is not installed.
    """
    h5py = h5py_module()
    files = well_files(source, split, name)
    excluded = set(exclude)
    described, mentioned = [], set()
    for path in files:
        with h5py.File(path, "r") as file:
            try:
                described.append(_file_ensemble(file, path, excluded))
                mentioned |= {
                    attribute_text(n) for g in ("t0_fields", "t1_fields", "t2_fields", "scalars") for n in file[g].attrs["field_names"]
                }
            except KeyError as error:  # h5py's message names the missing group, dataset or attribute
                raise ValueError(f"{path}: not in The Well's layout (docs/data_format.md): {error}") from None
    unknown = sorted(excluded - mentioned)
    if unknown:
        raise ValueError(f"{source}: exclude names {unknown}, which no file holds (fields and scalars: {sorted(mentioned)})")
    first, readers = described[0]
    for path, (other, _) in zip(files[1:], described[1:], strict=True):
        _same_shape(first, other, str(path))
    if first.attributes.get("recipe", {}).get("source") == "the_well":
        first.attributes["recipe"]["files"] = [p.name for p in files]
    ensemble = Ensemble(
        fields=first.fields,
        times=first.times,
        coordinates=first.coordinates,
        boundary_conditions=first.boundary_conditions,
        parameters=first.parameters,
        values={p.name: np.concatenate([e.values[p.name] for e, _ in described]) for p in first.parameters},
        seeds=np.concatenate([e.seeds for e, _ in described]),
        attributes=first.attributes,
        members=np.arange(sum(e.n_members for e, _ in described)),
    )
    return write_ensemble(store, ensemble, _trajectories(files, readers), str(source))


def _trajectories(files: Sequence[Path], readers: list[tuple[str, bool]]) -> Iterator[np.ndarray]:
    """Yields every trajectory of ``files`` as ``[time, channel, *space]`` float32, one h5py slice per field."""
    h5py = h5py_module()
    for path in files:
        with h5py.File(path, "r") as file:
            for i in range(int(file.attrs["n_trajectories"])):
                yield np.concatenate([from_well(file[key][i], vector) for key, vector in readers], axis=1).astype(np.float32, copy=False)
