"""Per-channel normalisation statistics of an ensemble, computed out of core with dask and kept in the store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch
import xarray as xr

from pdekit.data.schema import StoreError, json_attribute
from pdekit.data.store import channel_names, consolidate, open_store, space_shape, store_fields


@dataclass(frozen=True)
class FieldStatistics:
    """Mean and standard deviation of every channel over all completed members, times and points.

    ``normalize`` and ``denormalize`` take ``x [..., channel, *space]`` with ``space_dims`` spatial
    axes (a trajectory ``[T, C, *S]``, a batch of windows ``[B, k, C, *S]``, a state ``[B, C, *S]``).

    Args:
        mean: one mean per channel.
        std: one positive standard deviation per channel.
        space_dims: the number of spatial axes after the channel axis.
        channels: the channels' names (empty: not recorded).

    Raises:
        ValueError: ``mean`` and ``std`` differ in length, or a ``std`` is not positive.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    space_dims: int
    channels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not all(s > 0 for s in self.std):
            raise ValueError(f"FieldStatistics needs one positive std per mean; got mean {self.mean}, std {self.std}")

    _tensors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def moments(self, x):
        """Returns ``(mean, std)`` shaped ``[C, *1s]`` to broadcast against ``x``, in its array type, dtype and device.

        Tensors are made once per device and dtype and kept: a rollout or validation loop on a GPU
        normalises every step, and a fresh host-to-device copy each time would make the host wait.
        """
        shape = (len(self.mean), *([1] * self.space_dims))
        if not isinstance(x, torch.Tensor):
            return np.asarray(self.mean, dtype=x.dtype).reshape(shape), np.asarray(self.std, dtype=x.dtype).reshape(shape)
        key = (x.device, x.dtype)
        if key not in self._tensors:
            self._tensors[key] = tuple(torch.tensor(v, dtype=x.dtype, device=x.device).view(shape) for v in (self.mean, self.std))
        return self._tensors[key]

    def normalize(self, x):
        """Returns ``(x - mean) / std`` per channel: ``x [..., C, *space]``, a tensor or a numpy array, in its dtype and device."""
        mean, std = self.moments(x)
        return (x - mean) / std

    def denormalize(self, x):
        """Returns ``x * std + mean`` per channel, the inverse of ``normalize``: physical units again."""
        mean, std = self.moments(x)
        return x * std + mean


def compute_statistics(store, members=None, *, save: bool = True) -> FieldStatistics:
    """Computes every channel's statistics over the completed members (or those in ``members``) with dask; returns them.

    Reads the store chunk by chunk (never whole) through ``xarray.open_zarr``, in one pass. With
    ``save`` (and no ``members``) they are saved in the store's attributes for ``load_statistics``;
    statistics of a subset (a run's training members) are never saved into the store.

    Args:
        store: the ensemble.
        members: the store members to use; None: every completed member.
        save: save them into the store (only without ``members``).

    Returns:
        Each channel's mean and standard deviation over members, times and points.

    Raises:
        StoreError: a member in ``members`` is not completed, no member is, or a field is constant.
    """
    group = open_store(store, mode="r+" if save and members is None else "r")
    dataset = xr.open_zarr(store, consolidated=None)
    completed = dataset["completed"].load().values != 0
    chosen = np.flatnonzero(completed) if members is None else np.asarray(sorted(members), dtype=np.int64)
    if members is not None and not completed[chosen].all():
        raise StoreError(f"{store}: members {chosen[~completed[chosen]][:10].tolist()} are not completed")
    if not len(chosen):
        raise StoreError(f"{store}: no completed members to compute statistics over")
    moments = {}
    for name in store_fields(group):
        field = dataset[name].isel(member=chosen).astype("float64")
        keep = ["component"] if "component" in field.dims else []
        axes = [d for d in field.dims if d not in keep]
        moments[f"{name}_mean"], moments[f"{name}_mean_square"] = field.mean(axes), (field**2).mean(axes)
    moments = xr.Dataset(moments).compute()
    means, stds = [], []
    for name in store_fields(group):
        mean = np.atleast_1d(moments[f"{name}_mean"].values)
        std = np.sqrt(np.maximum(np.atleast_1d(moments[f"{name}_mean_square"].values) - mean**2, 0.0))
        if not (std > 0).all():
            raise StoreError(f"{store}: {name} is constant (mean {mean.tolist()}); it cannot be normalised")
        means += mean.tolist()
        stds += std.tolist()
    statistics = FieldStatistics(tuple(means), tuple(stds), len(space_shape(group)), channel_names(group))
    if save and members is None:
        group.attrs["normalization"] = json.dumps({"channels": list(statistics.channels), "mean": means, "std": stds})
        consolidate(store)
    return statistics


def load_statistics(store) -> FieldStatistics:
    """Returns the statistics saved in ``store`` by ``compute_statistics``.

    Raises:
        StoreError: there are none, or they are of other channels than the store holds.
    """
    group = open_store(store)
    saved = json_attribute(group.attrs, "normalization")
    channels = channel_names(group)
    if saved is None:
        raise StoreError(f"{store}: no normalisation statistics; run pdekit.data.normalize.compute_statistics(store) first")
    if tuple(saved["channels"]) != channels:
        raise StoreError(f"{store}: the saved statistics are of channels {saved['channels']}; the store holds {list(channels)}")
    return FieldStatistics(tuple(saved["mean"]), tuple(saved["std"]), len(space_shape(group)), channels)
