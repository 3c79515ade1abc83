"""Training windows streamed from a Zarr ensemble, chunk by chunk, never the whole store.

``Windows`` is a torch dataset of ``Window(inputs [k, C, *space], targets [m, C, *space], dt, params [P])``,
``C`` the store's channels (its fields, a vector field giving one channel per axis); the default
collate stacks windows into a ``Window`` of batches ``[B, k, C, *space]``.
It implements ``__getitems__``, so a ``DataLoader`` fetches a whole batch per call and the batch is
read with at most one Zarr call per member it touches: zarr-python costs about a millisecond per call, and
one call per sample would cap streaming far below the disk. ``ChunkLocalSampler`` shuffles while
keeping each stretch of batches to a few members, so those calls stay few: a member is read whole
(one chunk or shard) and cached while its block lasts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pdekit.data.normalize import FieldStatistics, load_statistics
from pdekit.data.sampling import shard
from pdekit.data.schema import StoreError, names
from pdekit.data.store import MemberReader, channel_names, member_status, open_store, space_shape, store_fields, values


class Window(NamedTuple):
    """One training sample (or, collated, a batch of them).

    Attributes:
        inputs: ``[(B,) k, C, *space]``, the ``k`` states the model sees.
        targets: ``[(B,) m, C, *space]``, the ``m`` states that follow.
        dt: ``[(B,)]``, the time between consecutive states.
        params: ``[(B,) P]``, the member's PDE parameters in the store's ``parameter_names`` order.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    dt: torch.Tensor
    params: torch.Tensor


def uniform_step(times: Sequence[float] | np.ndarray, where: str) -> float:
    """Returns the step of uniformly spaced ``times``; windows need a fixed dt.

    Args:
        times: ``[T]`` increasing times.
        where: what the message names (a store, a recipe).

    Raises:
        ValueError: fewer than two times, or steps that differ (beyond a relative 1e-9).
    """
    steps = np.diff(np.asarray(times, dtype=np.float64))
    if len(steps) == 0 or not np.allclose(steps, steps[0], rtol=1e-9):
        raise ValueError(f"{where}: time is not uniformly spaced ({list(times)[:5]}...); windows need a fixed dt")
    return float(steps[0])


def cut_windows(trajectories: torch.Tensor, input_steps: int, target_steps: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns every window of ``trajectories``, member-major: the windows ``Windows`` cuts from a store's members.

    Args:
        trajectories: ``[n, time, C, *space]``.
        input_steps: states per input (``k``).
        target_steps: states per target (``m``).
        stride: time indices between window starts ``0, stride, 2 stride, ...``.

    Returns:
        ``(inputs [n*W, k, C, *space], targets [n*W, m, C, *space])``, ``W`` windows per member.

    Raises:
        ValueError: a window of ``k + m`` states does not fit in the trajectories' times.
    """
    span = input_steps + target_steps
    if trajectories.shape[1] < span:
        raise ValueError(f"a window of {input_steps} + {target_steps} steps does not fit in {trajectories.shape[1]} times")
    windows = trajectories.unfold(1, span, stride).movedim(-1, 2)  # [n, W, span, C, *S]
    windows = windows.reshape(-1, span, *trajectories.shape[2:])
    return windows[:, :input_steps].contiguous(), windows[:, input_steps:].contiguous()


class Windows(Dataset):
    """Sliding windows of ``input_steps`` states followed by ``target_steps`` states, every ``stride`` steps.

    Only completed members are used (optionally only those in ``members``, e.g. a train split).
    The unit of reading is ``members_per_read`` neighbouring members' whole trajectories (whole
    chunks or shards, fetched concurrently by one Zarr call), kept in a cache of the
    ``cached_members`` most recently used members, so that a ``ChunkLocalSampler`` block is read
    once however many batches it feeds.
    ``params`` holds the member's parameters in the order of ``parameter_names``. With ``normalize=True``,
    inputs and targets are normalised by the statistics saved in the store (``normalize.compute_statistics``);
    with ``normalize=FieldStatistics(...)`` by those (e.g. a training set's, applied to a test store).

    Args:
        store: the ensemble (a path or an fsspec URL).
        input_steps: states per input (``k``).
        target_steps: states per target (``m``).
        stride: time indices between window starts.
        members: the store members to use (all completed ones by default).
        normalize: False, True (the store's statistics) or the ``FieldStatistics`` to apply.
        members_per_read: neighbouring members read by one Zarr call.
        cached_members: members kept in memory.

    Raises:
        ValueError: a step count below 1, or a window that does not fit in the stored times.
        StoreError: the store is not an ensemble, a member in ``members`` is not completed, the times
            are not uniformly spaced, or the statistics are of other channels.
    """

    def __init__(
        self,
        store,
        input_steps: int = 1,
        target_steps: int = 1,
        stride: int = 1,
        *,
        members: Sequence[int] | None = None,
        normalize: bool | FieldStatistics = False,
        members_per_read: int = 4,
        cached_members: int = 8,
    ):
        if input_steps < 1 or target_steps < 1 or stride < 1:
            raise ValueError(f"input_steps, target_steps and stride must be >= 1; got {input_steps}, {target_steps}, {stride}")
        group = open_store(store)
        self.store = store
        self.fields = tuple(store_fields(group))
        self.channels = channel_names(group)
        self.parameter_names = tuple(names(group.attrs, "parameter_names"))
        self.input_steps, self.target_steps, self.stride = input_steps, target_steps, stride
        completed, _ = member_status(group)
        available = np.flatnonzero(completed)
        if members is not None:
            missing = sorted(set(members) - set(available.tolist()))
            if missing:
                raise StoreError(f"{store}: members {missing[:10]} are not completed (or do not exist)")
            available = np.array(sorted(members), dtype=np.int64)
        self.members = available
        times = values(group, "time")
        try:
            self.dt = uniform_step(times, str(store))
        except ValueError as error:
            raise StoreError(str(error)) from None
        span = input_steps + target_steps
        if span > len(times):
            raise ValueError(f"a window of {input_steps} + {target_steps} steps does not fit in {len(times)} stored times")
        self.starts = np.arange(0, len(times) - span + 1, stride)
        self.n_times = len(times)
        self.params = (
            torch.tensor(np.stack([values(group, p)[self.members] for p in self.parameter_names], axis=-1), dtype=torch.float32)
            if self.parameter_names
            else torch.zeros(len(self.members), 0)
        )
        self.statistics = normalize if isinstance(normalize, FieldStatistics) else load_statistics(store) if normalize else None
        if self.statistics is not None and self.statistics.channels and tuple(self.statistics.channels) != self.channels:
            raise StoreError(
                f"{store}: the normalisation statistics are of channels {list(self.statistics.channels)}; the store holds "
                f"{list(self.channels)}"
            )
        self.space_shape = space_shape(group)
        self.members_per_read, self.cached_members = members_per_read, cached_members
        self._group = None
        self._reader: MemberReader | None = None
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_group"] = state["_reader"] = None  # each DataLoader worker opens the store itself
        state["_cache"] = OrderedDict()
        return state

    @property
    def group(self):
        if self._group is None:
            self._group = open_store(self.store)
        return self._group

    def __len__(self) -> int:
        return len(self.members) * len(self.starts)

    def locate(self, index: int) -> tuple[int, int]:
        """Returns ``(position in self.members, start time index)`` of window ``index``.

        Raises:
            IndexError: ``index`` is outside ``[0, len(self))``.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        return divmod(index, len(self.starts))[0], int(self.starts[index % len(self.starts)])

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Window]:
        """Returns the windows ``indices``, reading each member they touch at most once (through the cache).

        Raises:
            StoreError: a member's chunks cannot be read, or a completed member holds NaN or infinity.
        """
        span = self.input_steps + self.target_steps
        dt = torch.tensor(self.dt, dtype=torch.float32)
        items = []
        for index in indices:
            position, start = self.locate(int(index))
            window = self.trajectory(position)[start : start + span]
            items.append(Window(window[: self.input_steps], window[self.input_steps :], dt, self.params[position]))
        return items

    def trajectory(self, position: int) -> torch.Tensor:
        """Returns the whole (normalised) trajectory ``[time, C, *S]`` of ``self.members[position]``, from the cache when there.

        On a miss, the aligned group of ``members_per_read`` positions around it is read at once:
        one Zarr call fetches their chunks concurrently.
        """
        if position not in self._cache:
            first = position - position % self.members_per_read
            group = range(first, min(first + self.members_per_read, len(self.members)))
            for p, trajectory in zip(group, self._read(self.members[group.start : group.stop]), strict=True):
                self._cache[p] = trajectory
            while len(self._cache) > max(self.cached_members, self.members_per_read):
                self._cache.popitem(last=False)
        self._cache.move_to_end(position)
        return self._cache[position]

    def read_block(self, start: int, stop: int) -> np.ndarray:
        """Returns the stored (not normalised) trajectories of store members ``start .. stop - 1``: ``[n, T, C, *S]`` (one Zarr call per
        field)."""
        if self._reader is None:
            self._reader = MemberReader(self.group)
        return self._reader(start, stop)

    def _read(self, members: np.ndarray) -> list[torch.Tensor]:
        """Reads the trajectories of ``members`` (sorted store indices), one call per consecutive run."""
        runs = np.split(members, np.flatnonzero(np.diff(members) != 1) + 1)
        trajectories: list[torch.Tensor] = []
        for run in runs:
            try:
                block = self.read_block(int(run[0]), int(run[-1]) + 1)
            except Exception as error:  # noqa: BLE001 - any codec or I/O failure names its place
                if len(run) > 1:  # find the member at fault, one read each
                    for member in run:
                        self._read(np.array([member]))
                raise StoreError(
                    f"{self.store}: cannot read the fields {list(self.fields)} of member {int(run[0])}, time indices "
                    f"0..{self.n_times - 1}: {error}"
                ) from error
            finite = np.isfinite(block).reshape(*block.shape[:3], -1).all(axis=-1)
            if not finite.all():
                m, t, c = np.argwhere(~finite)[0]
                raise StoreError(
                    f"{self.store}: channel {self.channels[c]} of completed member {int(run[m])} holds NaN or infinity at time index "
                    f"{int(t)}"
                )
            if not block.flags.writeable:  # a memory map: torch needs memory it may own
                block = np.array(block)
            read = torch.from_numpy(block)
            if self.statistics is not None:
                read = self.statistics.normalize(read)
            trajectories.extend(read.unbind(0))
        return trajectories


class ChunkLocalSampler(Sampler[int]):
    """Shuffles windows in blocks of ``members_per_block`` neighbouring members: random order, few reads.

    Every epoch visits every window once. The blocks (aligned like ``Windows.members_per_read``, so
    a block is one read) come in random order, and the windows of each block are shuffled among
    themselves. Members are independent draws, so grouping neighbours biases nothing; the order
    depends only on ``(seed, epoch)`` (``set_epoch``), so a resumed run replays it. Under DDP,
    ``rank``/``replicas`` interleave the order (``shard``): each process still reads the same blocks.

    Args:
        windows: the dataset to order.
        members_per_block: neighbouring members per block; None: ``windows.members_per_read``.
        seed: with the epoch, sets the order.
        shuffle: False visits the windows in order.
        rank: this process's rank under DDP.
        replicas: the number of DDP processes.
    """

    def __init__(
        self,
        windows: Windows,
        members_per_block: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        *,
        rank: int = 0,
        replicas: int = 1,
    ):
        self.windows, self.seed, self.shuffle, self.rank, self.replicas = windows, seed, shuffle, rank, replicas
        self.members_per_block = members_per_block or windows.members_per_read
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration the order of ``epoch`` (the Trainer calls it before every epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.windows) / self.replicas)

    def __iter__(self) -> Iterator[int]:
        per_member = len(self.windows.starts)
        n_members = len(self.windows.members)
        rng = np.random.default_rng([self.seed, self.epoch])
        n_blocks = math.ceil(n_members / self.members_per_block)
        order = []
        for b in rng.permutation(n_blocks) if self.shuffle else range(n_blocks):
            first = b * self.members_per_block
            indices = np.arange(first * per_member, min(first + self.members_per_block, n_members) * per_member)
            order.extend((rng.permutation(indices) if self.shuffle else indices).tolist())
        return iter(shard(order, self.rank, self.replicas))
