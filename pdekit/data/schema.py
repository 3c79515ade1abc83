"""The ensemble schema (version 2): what a pdekit Zarr store holds, and ``validate`` to check a store against it.

One Zarr v3 group per ensemble, readable by plain ``xarray.open_zarr`` (and written CF-clean, so
``ds.to_netcdf`` and ``cf_xarray`` work) with no pdekit import:

- one variable per recorded field, ``<field>(member, time, [component,] [z,] [y,] x)``, float32, NaN
  where not yet written. Attribute ``fields`` lists them in channel order. A vector field (e.g.
  ``velocity``) has a ``component`` axis over the spatial axes in ``x, y, z`` order (its attribute
  ``components``, e.g. ``"x y"``); its channels are ``velocity_x, velocity_y``.
- coordinates ``member`` (CF ``standard_name: realization``), ``time`` (``axis: T``), ``x``, ``y``,
  ``z`` (``axis: X/Y/Z``, and ``boundary_condition``: one of ``BOUNDARY_CONDITIONS``).
- per-member coordinates along ``member``: the parameters (``viscosity``, ...), ``seed``, the int8
  flags ``completed`` (set only after the member's data is written; readers use only these members)
  and ``failed`` (blew up, never completed), and ``failure_time``. Each field's ``coordinates``
  attribute names them, so xarray opens them as coordinates: ``ds.where(ds.completed, drop=True)``.
- attributes: ``schema_version``, ``pdekit_version``, ``pde``, ``solver``, ``scheme``, ``fields`` and
  ``parameter_names`` (space-separated names), ``recipe`` (the full generation settings) and, once
  computed, ``normalization``, both as JSON strings; CF ``Conventions``; every variable carries
  ``long_name`` and ``units``.

Version 1 stores (one scalar field named by the attribute ``field``, bool flags, nested attributes)
are upgraded in place by ``pdekit upgrade STORE`` (``pdekit.data.store.upgrade_store``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import zarr

SCHEMA_VERSION = 2
"""The version of the ensemble schema this pdekit writes and reads (``pdekit.data.upgrade_store`` upgrades version 1)."""
SPACE_DIMS = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}
BOUNDARY_CONDITIONS = ("periodic", "wall", "open")
FLAGS = ("completed", "failed")
UPGRADE = "upgrade it in place with `pdekit upgrade STORE` (pdekit.data.store.upgrade_store: rewrites metadata and flags, the data stays)"


class StoreError(ValueError):
    """A store that does not follow the schema, or data that cannot be read; the message says where."""


def names(attrs, key: str) -> list[str]:
    """Returns a space-separated name list attribute (``fields``, ``parameter_names``) as a list."""
    value = attrs.get(key, "")
    return value.split() if isinstance(value, str) else list(value)


def json_attribute(attrs, key: str, default=None):
    """Returns a JSON-string attribute (``recipe``, ``normalization``) decoded; ``default`` when absent."""
    value = attrs.get(key)
    if value is None:
        return default
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class ValidationReport:
    """What ``validate`` found: ``problems`` make the store unusable, ``notes`` are worth knowing.

    Args:
        store: the store validated, as given.
        problems: departures from the schema, each a sentence naming its place.
        notes: what is worth knowing but not wrong (incomplete or failed members).
    """

    store: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether there is no problem."""
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{self.store}: {'valid' if self.ok else 'INVALID'}"]
        lines += [f"  problem: {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _member_list(indices: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    return f"[{shown}{', ...' if len(indices) > limit else ''}] ({len(indices)} in all)"


def _dims(array) -> tuple[str, ...]:
    return tuple(array.metadata.dimension_names or ())


def validate(store, check_values: bool = True) -> ValidationReport:
    """Returns a report of everything about ``store`` that departs from the schema.

    Checks the schema version, the fields, coordinates and per-member variables and their
    dimensions, incomplete and failed members, and (``check_values``, one read of the data)
    completed members that hold NaN or infinity or whose chunks cannot be read.

    Args:
        store: a path or an fsspec URL.
        check_values: also read every completed member's data.

    Returns:
        The report; a store that cannot be opened is a report with that problem, not an exception.
    """
    report = ValidationReport(str(store))
    try:
        group = zarr.open_group(store, mode="r", use_consolidated=False)  # the metadata itself, not a copy that may be stale
    except Exception as error:  # noqa: BLE001 - any failure to open is the report's answer
        report.problems.append(f"cannot open as a Zarr group: {error}")
        return report
    attrs = dict(group.attrs)
    version = attrs.get("schema_version")
    if version == 1:
        report.problems.append(f"schema_version is 1, from an older pdekit; {UPGRADE}")
        return report
    if version != SCHEMA_VERSION:
        report.problems.append(f"schema_version is {version!r}; this pdekit reads version {SCHEMA_VERSION} (and upgrades version 1)")
        return report
    fields = names(attrs, "fields")
    if not fields:
        report.problems.append("attribute 'fields' (the names of the solution variables) is missing or empty")
        return report
    arrays = dict(group.arrays())
    params = names(attrs, "parameter_names")
    first = arrays.get(fields[0])
    if first is None or first.ndim - 2 - ("component" in _dims(first)) not in SPACE_DIMS:
        report.problems.append(
            f"{fields[0]} has dims {_dims(first) if first is not None else None}; expected ('member', 'time', [component,] *space)"
        )
        return report
    ndim = first.ndim - 2 - ("component" in _dims(first))
    space = SPACE_DIMS[ndim]
    required = [*fields, "time", "member", *FLAGS, "failure_time", "seed", *params, *space]
    missing = [v for v in required if v not in arrays]
    if missing:
        report.problems.append(f"missing variables: {missing}")
        return report
    members, times = first.shape[:2]
    for name in fields:
        dims = _dims(arrays[name])
        vector = "component" in dims
        expected = ("member", "time", *(("component",) if vector else ()), *space)
        if dims != expected or arrays[name].shape[:2] != (members, times):
            report.problems.append(
                f"{name} has dims {dims} and shape {arrays[name].shape}; expected dims {expected} with {members} members and {times} times"
            )
        elif vector and (arrays[name].shape[2] != ndim or names(arrays[name].attrs, "components") != list("xyz"[:ndim])):
            report.problems.append(
                f"{name} is a vector field: it needs {ndim} components and the attribute components = {' '.join('xyz'[:ndim])!r}"
            )
    for var in ["member", *FLAGS, "failure_time", "seed", *params]:
        if _dims(arrays[var]) != ("member",) or arrays[var].shape != (members,):
            report.problems.append(f"{var} must have dims ('member',) and shape ({members},); got {_dims(arrays[var])} {arrays[var].shape}")
    if arrays["time"].shape != (times,):
        report.problems.append(f"time has shape {arrays['time'].shape}; the fields have {times} times")
    for axis in space:
        bc = arrays[axis].attrs.get("boundary_condition")
        if bc not in BOUNDARY_CONDITIONS:
            report.problems.append(f"coordinate {axis} has boundary_condition {bc!r}; expected one of {BOUNDARY_CONDITIONS}")
    if report.problems:
        return report

    completed = np.asarray(arrays["completed"][:]) != 0
    failed = np.asarray(arrays["failed"][:]) != 0
    incomplete = np.flatnonzero(~completed & ~failed)
    if len(incomplete):
        report.notes.append(f"incomplete members {_member_list(incomplete)}: resume the generation to finish them")
    if failed.any():
        when = np.asarray(arrays["failure_time"][:])[failed]
        report.notes.append(
            f"failed (blew up) members {_member_list(np.flatnonzero(failed))}, first at t={min(when, default=float('nan')):g}"
        )
    if (completed & failed).any():
        report.problems.append(f"members both completed and failed: {_member_list(np.flatnonzero(completed & failed))}")
    if check_values:
        bad = []
        for m in np.flatnonzero(completed):
            for name in fields:
                try:
                    values = np.asarray(arrays[name][int(m)])
                except Exception as error:  # noqa: BLE001 - a truncated or corrupt chunk: name its place
                    bad.append(f"{name} of member {int(m)} cannot be read ({type(error).__name__}: {error})")
                    continue
                finite = np.isfinite(values).reshape(values.shape[0], -1).all(axis=1)
                if not finite.all():
                    bad.append(f"{name} of member {int(m)} at time index {int(np.flatnonzero(~finite)[0])}")
        if bad:
            report.problems.append(
                f"completed members hold NaN or infinity or unreadable chunks: {bad[:10]}{' ...' if len(bad) > 10 else ''}"
            )
    return report
