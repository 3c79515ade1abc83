"""A store's ensemble on a coarser stored grid: what ``pdekit generate --stored-shape`` would have written from the same solves.

A generated pdekit store holds its solver's trajectory Fourier-truncated to the stored grid
(``recipes.record``), and truncating a truncation to fewer modes equals truncating the solver's
field once; so one expensive fine-grid ensemble serves every coarser grid (coarse-solver corrections
at 32² and 64² from one 256² solve). For a store whose members all completed, the copy equals a
direct generation up to the float32 rounding of the stored values; failed and unfinished members
are left out and the rest renumbered, as every pdekit export does (``read_ensemble``).
"""

from __future__ import annotations

import numbers
from dataclasses import replace

import numpy as np
import torch
import zarr

from pdekit.data.schema import SPACE_DIMS
from pdekit.grid import fourier_truncate
from pdekit.io.ensemble import Ensemble, member_trajectories, read_ensemble, write_ensemble


def coarsened(ensemble: Ensemble, shape: tuple[int, ...]) -> Ensemble:
    """Returns ``ensemble`` described on the periodic grid ``shape`` (``z, y, x`` order): coordinates ``j L / n`` and the recipe's
    ``stored_shape``.

    Raises:
        ValueError: ``shape`` has another number of axes, a size below 2 or above the store's, or an axis is not periodic
            (Fourier truncation assumes periodicity).
    """
    old = ensemble.shape
    if len(shape) != len(old) or any(n < 2 or n > m for n, m in zip(shape, old, strict=True)):
        raise ValueError(f"shape must have {len(old)} sizes from 2 up to the store's {list(old)}; got {list(shape)}")
    walls = {a: bc for a, bc in ensemble.boundary_conditions.items() if bc != "periodic"}
    if walls:
        raise ValueError(f"coarsening truncates Fourier modes, which needs periodic axes; the store has {walls}")
    coordinates = {}
    for axis, n in zip(SPACE_DIMS[ensemble.ndim], shape, strict=True):
        points = ensemble.coordinates[axis]
        length = len(points) * float(points[1] - points[0])  # as layout_of reads a grid's length
        coordinates[axis] = points[0] + np.arange(n) * (length / n)
    attributes = dict(ensemble.attributes)
    if attributes.get("recipe"):
        attributes["recipe"] = {**attributes["recipe"], "stored_shape": list(shape), "members": ensemble.n_members}
    return replace(ensemble, coordinates=coordinates, attributes=attributes)


def coarsen_store(source, out, shape) -> zarr.Group:
    """Writes ``source``'s completed members Fourier-truncated to the grid ``shape`` into a new store ``out`` and returns its group.

    Members are read and written one at a time, so any store size fits in memory; ``out`` is
    created atomically and each member is marked completed once written (``write_ensemble``).

    Args:
        source: a pdekit store (path or URL) on a periodic grid.
        out: where the coarse store goes; nothing may be there yet.
        shape: the coarse grid's points per axis, ``z, y, x`` order like the store's arrays (an int: every axis).

    Raises:
        ValueError: as ``coarsened``, naming the bad size or axis.
        FileExistsError: something is already at ``out``.
    """
    ensemble = read_ensemble(source)
    shape = (int(shape),) * ensemble.ndim if isinstance(shape, numbers.Integral) else tuple(int(n) for n in shape)
    coarse = coarsened(ensemble, shape)
    # in float64, as recipes.record truncates the solver's state
    trajectories = (fourier_truncate(torch.from_numpy(t).double(), shape).float().numpy() for t in member_trajectories(source, ensemble))
    return write_ensemble(out, coarse, trajectories, str(out))
