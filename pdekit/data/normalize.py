"""Normalisation statistics of an ensemble, computed out of core with dask and kept in the store."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from pdekit.data.schema import StoreError
from pdekit.data.store import consolidate, open_store


@dataclass(frozen=True)
class FieldStatistics:
    """Mean and standard deviation of a field over all completed members, times and points."""

    mean: float
    std: float

    def normalize(self, x):
        return (x - self.mean) / self.std

    def denormalize(self, x):
        return x * self.std + self.mean


def compute_statistics(store) -> FieldStatistics:
    """Computes the field's statistics over the completed members with dask, saves them in the store's attributes, and returns them.

    Reads the store chunk by chunk (never whole) through ``xarray.open_zarr``.
    """
    group = open_store(store, mode="r+")
    name = group.attrs["field"]
    dataset = xr.open_zarr(store, consolidated=None)
    completed = dataset["completed"].load()
    if not bool(completed.any()):
        raise StoreError(f"{store}: no completed members to compute statistics over")
    field = dataset[name].isel(member=np.flatnonzero(completed.values)).astype("float64")
    moments = xr.Dataset({"mean": field.mean(), "mean_square": (field**2).mean()}).compute()  # one pass over the chunks
    mean, mean_square = float(moments["mean"]), float(moments["mean_square"])
    std = float(np.sqrt(max(mean_square - mean**2, 0.0)))
    if not std > 0:
        raise StoreError(f"{store}: {name} is constant ({mean}); it cannot be normalised")
    group.attrs["normalization"] = {name: {"mean": mean, "std": std}}
    consolidate(store)
    return FieldStatistics(mean, std)


def load_statistics(store) -> FieldStatistics:
    """Returns the statistics saved by ``compute_statistics``; StoreError if there are none."""
    group = open_store(store)
    name = group.attrs["field"]
    saved = group.attrs.get("normalization", {}).get(name)
    if saved is None:
        raise StoreError(f"{store}: no normalisation statistics for {name}; run pdekit.data.normalize.compute_statistics(store) first")
    return FieldStatistics(float(saved["mean"]), float(saved["std"]))
