"""PDEBench's HDF5 layouts (Takamoto et al., "PDEBench", NeurIPS 2022 Datasets and Benchmarks): export a store to them, import from them.

PDEBench has two layouts, named after the loaders of its ``pdebench/models/fno/utils.py``:

- ``"single"`` (``FNODatasetSingle``): one dataset per variable, ``[sample, time, x, (y, z)]``
  (``tensor`` for a one-variable equation; ``density``, ``pressure``, ``Vx``, ``Vy``, ``Vz`` for
  compressible flow), and ``t-coordinate`` (one entry more than the stored steps, as PDEBench's
  generators write it), ``x-coordinate``, ``y-coordinate``, ``z-coordinate``. Parameters are file
  attributes (``Nu``, ``beta``, ``eta``, ...), one value per file: PDEBench puts them in file names.
- ``"multi"`` (``FNODatasetMult``): one group per sample (``0000``, ``0001``, ...) holding
  ``data [time, x, (y, z), channel]`` and ``grid/x``, ``grid/y``, ``grid/z``, ``grid/t``; each
  group's ``config`` attribute (YAML) holds that sample's settings, so per-member parameters fit.

===============================  ===========================  ===========================
pdekit store                     ``single``                   ``multi``
===============================  ===========================  ===========================
channel ``c`` of the fields      dataset ``c`` (``tensor``     ``data[..., c]``
                                 if one; ``velocity_x`` ->
                                 ``Vx``)
``time``                         ``t-coordinate`` (T + 1)     ``<sample>/grid/t``
``x``, ``y``, ``z``              ``x-coordinate``, ...        ``<sample>/grid/x``, ...
per-member parameter ``p``       ``@p`` if constant; refused  ``config`` YAML ``p``
                                 if it varies (see below)
``seed``                         ``pdekit/seeds`` (dataset)   ``config`` YAML ``seed``
boundary conditions, ``pde``,    ``@pdekit_attributes`` (JSON; PDEBench has no slot for them)
field names and units
===============================  ===========================  ===========================

Array axes differ: PDEBench lays space out ``x, y, z``, pdekit ``(z, y, x)``. Only completed members
are exported. Exporting a store whose parameters vary between members to ``single`` raises,
unless ``by_parameters=True`` (one file per distinct value, named after it, PDEBench's own
convention) or ``drop_parameters=True`` (leaves the varying ones out, on purpose). Each file is
written as ``<file>.partial`` and renamed once every file of the export is whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import yaml
import zarr

import pdekit
from pdekit.data.fields import AXES, Field, Parameter
from pdekit.io.ensemble import Ensemble, check_axis, decimal_float64, member_trajectories, read_ensemble, reverse_space, write_ensemble
from pdekit.io.formats import attribute_text, h5py_module, read_pdekit_array, replaced_when_written, write_pdekit_arrays

LAYOUTS = ("single", "multi")
# PDEBench's names for the velocity components (its compressible Navier-Stokes files).
VELOCITY = {"x": "Vx", "y": "Vy", "z": "Vz"}


def _channel_datasets(ensemble: Ensemble) -> list[str]:
    """Returns the ``single``-layout dataset name of each channel: ``tensor`` for one channel, PDEBench's ``Vx, Vy, Vz`` for velocity."""
    if len(ensemble.channel_names()) == 1:
        return ["tensor"]
    result = []
    for field in ensemble.fields:
        if field.name == "velocity" and field.vector:
            result += [VELOCITY[c] for c in field.components(ensemble.ndim)]
        else:
            result += list(field.channels(ensemble.ndim))
    return result


def _pdekit_attributes(ensemble: Ensemble, datasets: list[str] | None) -> str:
    """Returns the JSON of what PDEBench has no slot for: fields, parameters' names and units, boundary conditions, store attributes."""
    return json.dumps(
        {
            "fields": [{"name": f.name, "long_name": f.long_name, "units": f.units, "vector": f.vector} for f in ensemble.fields],
            "parameters": [{"name": p.name, "long_name": p.long_name, "units": p.units} for p in ensemble.parameters],
            "boundary_conditions": ensemble.boundary_conditions,
            "attributes": ensemble.attributes,
            **({"datasets": datasets} if datasets else {}),
        }
    )


def _t_coordinate(times: np.ndarray) -> np.ndarray:
    """Returns PDEBench's ``t-coordinate``: the stored times and one step more (its generators save ``arange(steps + 1) * dt``)."""
    return np.append(times, times[-1] + (times[-1] - times[-2])) if len(times) > 1 else times


def _subset(ensemble: Ensemble, rows: np.ndarray, parameters: Sequence[Parameter]) -> Ensemble:
    return Ensemble(
        fields=ensemble.fields,
        times=ensemble.times,
        coordinates=ensemble.coordinates,
        boundary_conditions=ensemble.boundary_conditions,
        parameters=tuple(parameters),
        values={p.name: ensemble.values[p.name][rows] for p in parameters},
        seeds=ensemble.seeds[rows],
        attributes=ensemble.attributes,
        members=ensemble.members[rows],
    )


def _parameter_file(path: Path, ensemble: Ensemble, names: Sequence[str], row: int) -> Path:
    """Returns the file of the members sharing ``ensemble``'s parameter values at ``row``: ``<stem>_<name><value>..<suffix>``, as PDEBench
    names its files."""
    tag = "_".join(f"{n}{float(ensemble.values[n][row])!r}" for n in names)
    return path.with_name(f"{path.stem}_{tag}{path.suffix}")


def export_pdebench(store, path, *, layout: str = "multi", by_parameters: bool = False, drop_parameters: bool = False) -> list[Path]:
    """Writes the completed members of ``store`` in PDEBench's ``layout`` to ``path``; returns the files written.

    Members are read and written one at a time, into ``<file>.partial`` siblings renamed only
    when every file is whole (an export that fails leaves none); incomplete and failed members are left out.
    ``multi`` keeps every member's parameters and seed in its group's ``config``. ``single`` keeps a
    parameter as a file attribute only when all members share it; when some vary it raises
    ValueError, unless ``by_parameters`` (one file per distinct combination of the varying values,
    ``<stem>_<name><value>.<suffix>``) or ``drop_parameters`` (the varying parameters are not written).

    Args:
        store: the Zarr ensemble: a local path or an fsspec URL.
        path: the HDF5 file to write (the stem of the files, with ``by_parameters``).
        layout: ``"multi"`` (one group per member) or ``"single"`` (one dataset per channel).
        by_parameters: with ``layout="single"``, one file per distinct combination of the varying parameters.
        drop_parameters: with ``layout="single"``, leave the varying parameters out.

    Returns:
        The files written.

    Raises:
        ValueError: ``layout`` is unknown, the options contradict each other or the layout, the
            store has no completed members, or parameters vary in a ``single`` export without
            ``by_parameters`` or ``drop_parameters``.
        FileExistsError: a file to write exists.
        ImportError: h5py is not installed.
    """
    h5py = h5py_module()
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if by_parameters and drop_parameters:
        raise ValueError("by_parameters and drop_parameters exclude each other: choose one file per value, or no values")
    if layout == "multi" and (by_parameters or drop_parameters):
        raise ValueError(
            "by_parameters and drop_parameters apply to layout='single'; layout='multi' keeps every member's parameters in its config"
        )
    ensemble = read_ensemble(store)
    path = Path(path)
    varying = ensemble.varying_parameters()
    if layout == "multi":
        parts = [(path, ensemble)]
    elif varying and by_parameters:
        combinations = np.stack([ensemble.values[n] for n in varying], axis=1)
        _, first, inverse = np.unique(combinations, axis=0, return_index=True, return_inverse=True)
        parts = [
            (
                _parameter_file(path, ensemble, varying, int(row)),
                _subset(ensemble, np.flatnonzero(inverse.ravel() == k), ensemble.parameters),
            )
            for k, row in enumerate(first)
        ]
    elif varying and not drop_parameters:
        raise ValueError(
            f"{store}: parameters {varying} differ between members, and PDEBench's single-file layout has one value per file (file "
            "attributes): "
            "use layout='multi' (a config per sample), by_parameters=True (one file per value) or drop_parameters=True (leave them out)"
        )
    else:
        kept = [p for p in ensemble.parameters if p.name not in varying]
        parts = [(path, _subset(ensemble, np.arange(ensemble.n_members), kept))]
    for target, _ in parts:
        if target.exists():
            raise FileExistsError(f"{target} exists; export elsewhere")
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [target for target, _ in parts]
    with replaced_when_written(targets) as partials:
        for partial, (_, part) in zip(partials, parts, strict=True):
            with h5py.File(partial, "w") as file:
                (_write_multi if layout == "multi" else _write_single)(file, store, part)
    return targets


def _write_single(file, store, ensemble: Ensemble) -> None:
    datasets = _channel_datasets(ensemble)
    shape = tuple(len(ensemble.coordinates[a]) for a in ensemble.axes)
    arrays = [
        file.create_dataset(name, shape=(ensemble.n_members, len(ensemble.times), *shape), dtype="float32", chunks=(1, 1, *shape))
        for name in datasets
    ]
    file.create_dataset("t-coordinate", data=_t_coordinate(ensemble.times))
    for axis in ensemble.axes:
        file.create_dataset(f"{axis}-coordinate", data=ensemble.coordinates[axis])
    for p in ensemble.parameters:
        file.attrs[p.name] = float(ensemble.values[p.name][0])
    file.attrs.update({"pdekit_version": pdekit.__version__, "pdekit_attributes": _pdekit_attributes(ensemble, datasets)})
    write_pdekit_arrays(file, seeds=ensemble.seeds.astype(np.int64))
    for i, trajectory in enumerate(member_trajectories(store, ensemble)):
        for channel, array in enumerate(arrays):
            array[i] = reverse_space(trajectory[:, channel], leading=1)


def _write_multi(file, store, ensemble: Ensemble) -> None:
    width = max(4, len(str(ensemble.n_members - 1)))  # zero-padded, so that sorted keys are member order
    file.attrs.update({"pdekit_version": pdekit.__version__, "pdekit_attributes": _pdekit_attributes(ensemble, None)})
    for i, trajectory in enumerate(member_trajectories(store, ensemble)):
        group = file.create_group(f"{i:0{width}d}")
        group.create_dataset("data", data=np.moveaxis(reverse_space(trajectory, leading=2), 1, -1))  # [T, C, z, y, x] -> [T, x, y, z, C]
        for axis in ensemble.axes:
            group.create_dataset(f"grid/{axis}", data=ensemble.coordinates[axis])
        group.create_dataset("grid/t", data=ensemble.times)
        config = {
            "member": int(ensemble.members[i]),
            "seed": int(ensemble.seeds[i]),
            **{p.name: float(ensemble.values[p.name][i]) for p in ensemble.parameters},
        }
        group.attrs["config"] = yaml.safe_dump(config)


def _boundary_conditions(path: Path, ndim: int, given: Sequence[str] | None, saved: dict | None) -> dict[str, str]:
    """Returns each axis's boundary condition: ``given`` (x, y, z order), else pdekit's own record, else the file name's (``periodic``;
    ``trans``: open)."""
    axes = AXES[:ndim]
    if given:
        if len(given) != ndim:
            raise ValueError(f"boundary_conditions needs one entry per axis {list(axes)}; got {list(given)}")
        return dict(zip(axes, given, strict=True))
    if saved:
        return dict(saved)
    words = path.stem.lower().split("_")
    for word, bc in (("periodic", "periodic"), ("trans", "open")):
        if word in words:
            return dict.fromkeys(axes, bc)
    raise ValueError(
        f"{path}: PDEBench files do not record boundary conditions and the name says neither periodic nor trans; pass boundary_conditions "
        "(pdekit import --boundary-conditions ...)"
    )


def _foreign_fields(channels: Sequence[str], ndim: int) -> tuple[list[Field], list[str]]:
    """Returns the fields of foreign ``single``-layout datasets and their channel order: the scalars by name, then ``Vx, Vy, Vz`` as
    ``velocity``."""
    velocity = [VELOCITY[a] for a in AXES[:ndim]]
    scalars = sorted(c for c in channels if c not in velocity)
    fields = [Field(c, c) for c in scalars]
    present = [v for v in velocity if v in channels]
    if present and present != velocity:
        raise ValueError(f"velocity components {present} do not cover the {ndim} axes {velocity}")
    if present:
        fields.append(Field("velocity", "velocity", vector=ndim > 1))
    return fields, scalars + present


def _numbers(mapping, prefix: str = "") -> dict[str, float]:
    """Returns the numeric leaves of a (nested) mapping, keys joined with ``_``; booleans are not numbers here."""
    result = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            result.update(_numbers(value, f"{name}_"))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            result[name] = float(value)
    return result


def _chosen(available: dict[str, np.ndarray], wanted: Sequence[str] | None, where: str) -> dict[str, np.ndarray]:
    if wanted is None:
        return available
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"{where}: parameters {missing} are not in the file; it has {sorted(available)}")
    return {n: available[n] for n in wanted}


def import_pdebench(
    path, store, *, boundary_conditions: Sequence[str] | None = None, parameters: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> zarr.Group:
    """Creates the Zarr ensemble ``store`` from a PDEBench file (either layout, recognised by its contents) and returns its group.

    Samples become members in order, each read with h5py slices and written before the next is
    read. Parameters: a ``single`` file's numeric attributes (one value for all its samples), a
    ``multi`` file's numeric ``config`` entries (per sample; ``seed`` becomes the member's seed);
    ``parameters`` picks some of them. Boundary conditions come from ``boundary_conditions``
    (x, y, z order), else the file name (``periodic``; ``trans``, PDEBench's transmissive
    outflow: ``open``); a file pdekit wrote carries its own. ``exclude`` names ``single``
    datasets to leave out (those a store cannot hold, such as Darcy flow's time-less ``nu``,
    are refused otherwise).

    Args:
        path: the PDEBench HDF5 file.
        store: the Zarr ensemble to create: a local path or an fsspec URL.
        boundary_conditions: one of ``periodic``, ``wall``, ``open`` per axis, in ``x, y, z`` order;
            None to take them from the file.
        parameters: the parameters to keep, by name; None for all.
        exclude: ``single``-layout datasets to leave out.

    Returns:
        The new store's root group.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: the file is in neither layout, holds what a store cannot (naming it), or a
            trajectory is not finite.
        ImportError: h5py is not installed.
    """
    h5py = h5py_module()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with h5py.File(path, "r") as file:
        multi = [k for k in sorted(file) if isinstance(file[k], h5py.Group) and "data" in file[k]]
        saved = json.loads(attribute_text(file.attrs["pdekit_attributes"])) if "pdekit_attributes" in file.attrs else None
        try:
            if multi:
                ensemble, read = _describe_multi(file, path, multi, saved, boundary_conditions, parameters)
            else:
                ensemble, read = _describe_single(file, path, saved, boundary_conditions, parameters, set(exclude))
        except KeyError as error:  # h5py's message names the missing group, dataset or attribute
            raise ValueError(f"{path}: not in a PDEBench layout: {error}") from None
    return write_ensemble(store, ensemble, read(), str(path))


def _saved_fields(saved: dict) -> list[Field]:
    return [Field(f["name"], f["long_name"], f["units"], vector=f["vector"]) for f in saved["fields"]]


def _saved_parameters(saved: dict | None, values: dict[str, np.ndarray]) -> tuple[Parameter, ...]:
    known = {p["name"]: Parameter(p["name"], p["long_name"], p["units"]) for p in (saved or {}).get("parameters", [])}
    return tuple(known.get(n, Parameter(n, n)) for n in values)


def _attributes(saved: dict | None, path: Path, layout: str) -> dict:
    if saved:
        return saved["attributes"]
    return {
        "pde": path.stem,
        "solver": "unknown",
        "scheme": "unknown",
        "title": f"{path.name}, imported from PDEBench",
        "recipe": {"name": path.stem, "source": "pdebench", "layout": layout},
    }


def _describe_single(file, path: Path, saved, given_bcs, wanted, exclude: set[str]):
    where = str(path)
    axes = [a for a in AXES if f"{a}-coordinate" in file]
    if not axes or axes != list(AXES[: len(axes)]):
        raise ValueError(f"{where}: expected x-coordinate (and y-, z-coordinate) datasets; found {sorted(file)}")
    coordinates = {a: check_axis(file[f"{a}-coordinate"][:], a, where) for a in axes}
    shape = tuple(len(coordinates[a]) for a in axes)
    candidates = [
        k for k in sorted(file) if not k.endswith("-coordinate") and isinstance(file[k], h5py_module().Dataset) and k not in exclude
    ]
    if saved:
        channels = saved["datasets"]
        fields = _saved_fields(saved)
    else:
        data = [k for k in candidates if file[k].ndim == 2 + len(axes) and file[k].shape[2:] == shape]
        refused = [f"{k} {file[k].shape}" for k in candidates if k not in data]
        if refused:
            raise ValueError(
                f"{where}: a pdekit store holds [sample, time, *space] variables only, not {refused}; leave them out on purpose with "
                "exclude=[...]"
            )
        fields, channels = _foreign_fields(data, len(axes))
    if not channels:
        raise ValueError(f"{where}: no [sample, time, *space] datasets to import")
    n, steps = file[channels[0]].shape[:2]
    for c in channels:
        if file[c].shape != (n, steps, *shape):
            raise ValueError(f"{where}: dataset {c} has shape {file[c].shape}; expected {(n, steps, *shape)}")
    if "t-coordinate" not in file:
        raise ValueError(f"{where}: no t-coordinate dataset; a store needs the times of the {steps} steps")
    t = decimal_float64(file["t-coordinate"][:])
    if len(t) not in (steps, steps + 1):
        raise ValueError(f"{where}: t-coordinate has {len(t)} entries for {steps} stored steps (PDEBench writes {steps + 1})")
    numbers = {k: np.full(n, v) for k, v in _numbers(dict(file.attrs)).items() if not k.startswith("pdekit_")}
    if saved and wanted is None:
        wanted = [p["name"] for p in saved["parameters"] if p["name"] in numbers]
    values = _chosen(numbers, wanted, where)
    seeds = read_pdekit_array(file, "seeds", n, where)
    seeds = np.full(n, -1, dtype=np.int64) if seeds is None else seeds.astype(np.int64)
    ensemble = Ensemble(
        fields=tuple(fields),
        times=t[:steps],
        coordinates=coordinates,
        boundary_conditions=_boundary_conditions(path, len(axes), given_bcs, saved and saved["boundary_conditions"]),
        parameters=_saved_parameters(saved, values),
        values=values,
        seeds=seeds,
        attributes=_attributes(saved, path, "single"),
        members=np.arange(n),
    )

    def read() -> Iterator[np.ndarray]:
        with h5py_module().File(path, "r") as source:
            for i in range(n):
                yield np.stack([reverse_space(source[c][i], leading=1) for c in channels], axis=1).astype(np.float32, copy=False)

    return ensemble, read


def _describe_multi(file, path: Path, keys: list[str], saved, given_bcs, wanted):
    where = str(path)
    first = file[keys[0]]
    axes = [a for a in AXES if a in first["grid"]]
    coordinates = {a: check_axis(first["grid"][a][:], a, where) for a in axes}
    times = decimal_float64(first["grid"]["t"][:])
    steps, channels = first["data"].shape[0], first["data"].shape[-1]
    shape = (steps, *(len(coordinates[a]) for a in axes), channels)
    configs = []
    for key in keys:
        group = file[key]
        if group["data"].shape != shape or not all(np.array_equal(decimal_float64(group["grid"][a][:]), coordinates[a]) for a in axes):
            raise ValueError(
                f"{where}: sample {key} has data {group['data'].shape} or a grid unlike sample {keys[0]}'s ({shape}); one store holds one "
                "ensemble"
            )
        if not np.array_equal(decimal_float64(group["grid"]["t"][:]), times):
            raise ValueError(f"{where}: sample {key} has other times than sample {keys[0]}; one store holds one time axis")
        config = yaml.safe_load(attribute_text(group.attrs["config"])) if "config" in group.attrs else {}
        configs.append(config if isinstance(config, dict) else {})
    if len(times) not in (steps, steps + 1):
        raise ValueError(f"{where}: grid/t has {len(times)} entries for {steps} stored steps")
    leaves = [_numbers(c) for c in configs]
    common = [k for k in leaves[0] if k not in ("seed", "member") and all(k in leaf for leaf in leaves)]
    numbers = {k: np.array([leaf[k] for leaf in leaves]) for k in common}
    if saved and wanted is None:
        wanted = [p["name"] for p in saved["parameters"]]
    values = _chosen(numbers, wanted, where)
    seeds = np.array([int(c["seed"]) if isinstance(c.get("seed"), int) else -1 for c in configs], dtype=np.int64)
    if saved:
        fields = _saved_fields(saved)
    else:
        fields = [Field("data", "data")] if channels == 1 else [Field(f"data_{c}", f"data channel {c}") for c in range(channels)]
    ensemble = Ensemble(
        fields=tuple(fields),
        times=times[:steps],
        coordinates=coordinates,
        boundary_conditions=_boundary_conditions(path, len(axes), given_bcs, saved and saved["boundary_conditions"]),
        parameters=_saved_parameters(saved, values),
        values=values,
        seeds=seeds,
        attributes=_attributes(saved, path, "multi"),
        members=np.arange(len(keys)),
    )

    def read() -> Iterator[np.ndarray]:
        with h5py_module().File(path, "r") as source:
            for key in keys:
                data = source[key]["data"][()]  # [T, x, y, z, C]
                yield np.moveaxis(reverse_space(data, leading=1, trailing=1), -1, 1).astype(np.float32, copy=False)

    return ensemble, read
