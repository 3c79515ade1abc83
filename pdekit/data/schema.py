"""The ensemble schema: what a pdekit Zarr store holds, and ``validate`` to check a store against it.

One Zarr v3 group per ensemble, readable by plain ``xarray.open_zarr`` with no pdekit import:

- ``<field>(member, time, [z,] [y,] x)``: the solution, float32, NaN where not yet written; the field is
  ``vorticity``, ``temperature`` or ``velocity`` by PDE (attribute ``field``).
- coordinates ``member``, ``time``, ``x`` (and ``y``, ``z``).
- per-member parameters over ``member`` (``viscosity``, ``diffusivity``, ...), and ``seed``.
- ``completed(member)``: set only after the member's data is written; readers use only these members.
- ``failed(member)`` and ``failure_time(member)``: a member whose simulation blew up, never completed.
- attributes: ``schema_version``, ``pdekit_version``, ``pde``, ``solver``, ``scheme``, ``field``,
  ``parameter_names``, ``recipe`` (the full generation settings), CF ``Conventions``; every variable
  carries ``long_name`` and ``units``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import zarr

SCHEMA_VERSION = 1
SPACE_DIMS = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}
LONG_NAMES = {
    "vorticity": "vorticity (curl of velocity)",
    "temperature": "temperature",
    "velocity": "velocity",
    "time": "time",
    "x": "x coordinate",
    "y": "y coordinate",
    "z": "z coordinate",
    "member": "ensemble member index",
    "viscosity": "kinematic viscosity",
    "diffusivity": "thermal diffusivity",
    "forcing_amplitude": "forcing amplitude factor",
    "drag": "linear drag coefficient",
    "seed": "random seed of the initial condition",
    "completed": "member written completely",
    "failed": "member simulation blew up",
    "failure_time": "time at which the member became non-finite",
}
# Nondimensional problems: every quantity is in units of the domain length and time scale.
UNITS = {"viscosity": "1", "diffusivity": "1", "time": "1", "x": "1", "y": "1", "z": "1"}


class StoreError(ValueError):
    """A store that does not follow the schema, or data that cannot be read; the message says where."""


@dataclass
class ValidationReport:
    """What ``validate`` found: ``problems`` make the store unusable, ``notes`` are worth knowing."""

    store: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{self.store}: {'valid' if self.ok else 'INVALID'}"]
        lines += [f"  problem: {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _member_list(indices: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    return f"[{shown}{', ...' if len(indices) > limit else ''}] ({len(indices)} in all)"


def validate(store, check_values: bool = True) -> ValidationReport:
    """Returns a report of everything about ``store`` that departs from the schema.

    Checks the schema version, the variables and their dimensions, incomplete and failed members,
    and (``check_values``, one read of the data) completed members that hold NaN or infinity.
    """
    report = ValidationReport(str(store))
    try:
        group = zarr.open_group(store, mode="r")
    except Exception as error:  # noqa: BLE001 - any failure to open is the report's answer
        report.problems.append(f"cannot open as a Zarr group: {error}")
        return report
    attrs = dict(group.attrs)
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        report.problems.append(f"schema_version is {version!r}; this pdekit reads version {SCHEMA_VERSION}")
    name = attrs.get("field")
    if name is None:
        report.problems.append("attribute 'field' (the name of the solution variable) is missing")
        return report
    arrays = {k: v for k, v in group.arrays()}
    params = list(attrs.get("parameter_names", []))
    required = [name, "time", "member", "completed", "failed", "seed", *params]
    missing = [v for v in required if v not in arrays]
    if missing:
        report.problems.append(f"missing variables: {missing}")
        return report
    data = arrays[name]
    dims = tuple(data.metadata.dimension_names or ())
    ndim = data.ndim - 2
    if ndim not in SPACE_DIMS or dims != ("member", "time", *SPACE_DIMS[ndim]):
        report.problems.append(f"{name} has dims {dims}; expected ('member', 'time', *space) with space one of {list(SPACE_DIMS.values())}")
        return report
    members, times = data.shape[:2]
    for var in ["member", "completed", "failed", "seed", *params]:
        if tuple(arrays[var].metadata.dimension_names or ()) != ("member",) or arrays[var].shape != (members,):
            report.problems.append(f"{var} must have dims ('member',) and shape ({members},); got {arrays[var].metadata.dimension_names} {arrays[var].shape}")
    if arrays["time"].shape != (times,):
        report.problems.append(f"time has shape {arrays['time'].shape}; {name} has {times} times")
    if report.problems:
        return report

    completed = np.asarray(arrays["completed"][:], dtype=bool)
    failed = np.asarray(arrays["failed"][:], dtype=bool)
    incomplete = np.flatnonzero(~completed & ~failed)
    if len(incomplete):
        report.notes.append(f"incomplete members {_member_list(incomplete)}: resume the generation to finish them")
    if failed.any():
        when = np.asarray(arrays["failure_time"][:])[failed] if "failure_time" in arrays else []
        report.notes.append(f"failed (blew up) members {_member_list(np.flatnonzero(failed))}, first at t={min(when, default=float('nan')):g}")
    if (completed & failed).any():
        report.problems.append(f"members both completed and failed: {_member_list(np.flatnonzero(completed & failed))}")
    if check_values:
        bad = []
        for m in np.flatnonzero(completed):
            values = data[int(m)]
            if not np.isfinite(values).all():
                t = int(np.argwhere(~np.isfinite(values))[0][0])
                bad.append(f"member {int(m)} at time index {t}")
        if bad:
            report.problems.append(f"completed members hold NaN or infinity: {bad[:10]}{' ...' if len(bad) > 10 else ''}")
    return report
