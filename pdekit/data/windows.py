"""Training windows streamed from a Zarr ensemble, chunk by chunk, never the whole store.

``Windows`` is a torch dataset of ``(inputs [k*C, *space], targets [m*C, *space], dt, params [P])``.
It implements ``__getitems__``, so a ``DataLoader`` fetches a whole batch per call and the batch is
read with one Zarr call per member it touches: zarr-python costs about a millisecond per call, and
one call per sample would cap streaming far below the disk. ``ChunkLocalSampler`` shuffles while
keeping each batch to a few members, so those calls stay few.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from pdekit.data.normalize import load_statistics
from pdekit.data.schema import StoreError
from pdekit.data.store import member_status, open_store


class Windows(Dataset):
    """Sliding windows of ``input_steps`` states followed by ``target_steps`` states, every ``stride`` steps.

    Only completed members are used (optionally only those in ``members``, e.g. a train split).
    ``params`` holds the member's parameters in the order of ``parameter_names``. With ``normalize``,
    inputs and targets are normalised by the statistics saved in the store (``normalize.compute_statistics``).
    """

    def __init__(self, store, input_steps: int = 1, target_steps: int = 1, stride: int = 1, *, members: Sequence[int] | None = None, normalize: bool = False):
        if input_steps < 1 or target_steps < 1 or stride < 1:
            raise ValueError(f"input_steps, target_steps and stride must be >= 1; got {input_steps}, {target_steps}, {stride}")
        group = open_store(store)
        self.store = store
        self.field = group.attrs["field"]
        self.parameter_names = tuple(group.attrs["parameter_names"])
        self.input_steps, self.target_steps, self.stride = input_steps, target_steps, stride
        completed, _ = member_status(group)
        available = np.flatnonzero(completed)
        if members is not None:
            missing = sorted(set(members) - set(available.tolist()))
            if missing:
                raise StoreError(f"{store}: members {missing[:10]} are not completed (or do not exist)")
            available = np.array(sorted(members), dtype=np.int64)
        self.members = available
        times = np.asarray(group["time"][:])
        steps = np.diff(times)
        if len(steps) == 0 or not np.allclose(steps, steps[0], rtol=1e-9):
            raise StoreError(f"{store}: time is not uniformly spaced ({times[:5]}...); windows need a fixed dt")
        self.dt = float(steps[0])
        span = input_steps + target_steps
        if span > len(times):
            raise ValueError(f"a window of {input_steps} + {target_steps} steps does not fit in {len(times)} stored times")
        self.starts = np.arange(0, len(times) - span + 1, stride)
        self.params = torch.tensor(np.stack([group[p][:][self.members] for p in self.parameter_names], axis=-1), dtype=torch.float32) if self.parameter_names else torch.zeros(len(self.members), 0)
        self.statistics = load_statistics(store) if normalize else None
        self.space_shape = tuple(group[self.field].shape[2:])
        self._array = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_array"] = None  # each DataLoader worker opens the store itself
        return state

    @property
    def array(self):
        if self._array is None:
            self._array = open_store(self.store)[self.field]
        return self._array

    def __len__(self) -> int:
        return len(self.members) * len(self.starts)

    def locate(self, index: int) -> tuple[int, int]:
        """Returns ``(position in self.members, start time index)`` of window ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        return divmod(index, len(self.starts))[0], int(self.starts[index % len(self.starts)])

    def __getitem__(self, index: int):
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        located = [self.locate(int(i)) for i in indices]
        span = self.input_steps + self.target_steps
        blocks = {}
        for position in {p for p, _ in located}:
            starts = [s for p, s in located if p == position]
            blocks[position] = (min(starts), self._read(int(self.members[position]), min(starts), max(starts) + span))
        dt = torch.tensor(self.dt, dtype=torch.float32)
        items = []
        for position, start in located:
            first, block = blocks[position]
            window = block[start - first : start - first + span]
            items.append((window[: self.input_steps], window[self.input_steps :], dt, self.params[position]))
        return items

    def _read(self, member: int, t0: int, t1: int) -> torch.Tensor:
        try:
            block = np.asarray(self.array[member, t0:t1])
        except Exception as error:  # noqa: BLE001 - any codec or I/O failure names its place
            raise StoreError(f"{self.store}: cannot read {self.field} of member {member}, time indices {t0}..{t1 - 1}: {error}") from error
        finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        if not finite.all():
            raise StoreError(f"{self.store}: {self.field} of completed member {member} holds NaN or infinity at time index {t0 + int(np.argmin(finite))}")
        block = torch.from_numpy(block)
        return block if self.statistics is None else self.statistics.normalize(block)


class ChunkLocalSampler(Sampler[int]):
    """Shuffles windows in blocks of ``members_per_block`` members: random order, few reads per batch.

    Every epoch visits every window once. Members are shuffled, taken ``members_per_block`` at a
    time, and the windows of each block are shuffled among themselves; ``set_epoch`` reseeds.
    """

    def __init__(self, windows: Windows, members_per_block: int = 4, seed: int = 0, shuffle: bool = True):
        self.windows, self.members_per_block, self.seed, self.shuffle = windows, members_per_block, seed, shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self) -> Iterator[int]:
        per_member = len(self.windows.starts)
        n_members = len(self.windows.members)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n_members) if self.shuffle else np.arange(n_members)
        for b in range(math.ceil(n_members / self.members_per_block)):
            block = order[b * self.members_per_block : (b + 1) * self.members_per_block]
            indices = (block[:, None] * per_member + np.arange(per_member)[None]).reshape(-1)
            yield from (rng.permutation(indices) if self.shuffle else indices).tolist()
