"""The training reservoir: a fixed-capacity buffer of samples on the training device, between producers and the trainer.

Online training (Meyer et al., "Training Deep Surrogate Models with Large Scale Online Learning",
ICML 2023) streams simulation output straight into training. Samples arrive in bursts of strongly
correlated windows (one batch of trajectories at a time), so the trainer must not see them in
arrival order; the reservoir decorrelates the stream and decides how often each sample is reused.

Policies (how ``sample`` picks and what a full reservoir does with a new sample):

- ``"fifo"``: ``sample`` returns the oldest samples and removes them; each sample is used once and a
  full reservoir makes producers wait.
- ``"firo"`` (first in, random out): ``sample`` removes samples drawn uniformly at random; each sample
  is used once and a full reservoir makes producers wait.
- ``"reservoir"``: samples stay after being drawn (uniformly at random). With ``min_seen=0``, a full
  reservoir admits the ``t``-th sample offered with probability ``capacity / t`` in place of a random
  one (Vitter's Algorithm R, ACM TOMS 1985), so its content is a uniform sample of everything offered.
  With ``min_seen=s >= 1`` (Melissa's rule), every sample is admitted, in place of a random sample
  that has already been drawn at least ``s`` times; producers wait while there is none, so no
  sample is wasted and none leaves before the trainer has used it ``s`` times.

Training waits until ``watermark`` samples have been admitted, so the first batches are not drawn
from a handful of trajectories. ``put`` and ``sample`` are thread-safe.

All bookkeeping (which slots hold what, how often each was drawn) lives on the host in numpy; the
samples live in preallocated device tensors. ``put`` only books slots and keeps a reference to the
batch; ``sample`` copies what was booked into the storage and gathers its batch, all on the trainer's
thread and current CUDA stream, never synchronising the device. Producers that compute on their own
stream must finish their work before ``put`` (``pdekit.online.Generator`` does).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

POLICIES = ("fifo", "firo", "reservoir")


class ReservoirClosed(RuntimeError):
    """Raised by ``put`` after ``close``, and by ``sample`` once a closed reservoir has nothing left to give."""


@dataclass
class ReservoirCounters:
    """What went through a reservoir.

    ``admitted``: samples stored; ``discarded``: samples Algorithm R turned away; ``evicted``: stored
    samples overwritten by newer ones; ``used_up``: samples removed by ``sample`` (fifo, firo);
    ``draws``: samples returned by ``sample``; ``unique_drawn``: distinct samples drawn at least once;
    ``waiting_seconds``: time ``sample`` spent waiting for data; ``reuse``: how many times each sample
    that left the reservoir had been drawn (draw count -> number of samples).
    """

    admitted: int = 0
    discarded: int = 0
    evicted: int = 0
    used_up: int = 0
    draws: int = 0
    unique_drawn: int = 0
    waiting_seconds: float = 0.0
    reuse: Counter = field(default_factory=Counter)

    @property
    def offered(self) -> int:
        """Samples given to ``put`` so far (admitted or discarded)."""
        return self.admitted + self.discarded

    @property
    def mean_reuse(self) -> float:
        """Mean number of draws per distinct sample drawn."""
        return self.draws / self.unique_drawn if self.unique_drawn else 0.0


class Reservoir:
    """Holds up to ``capacity`` samples, each a tuple of tensors, on ``device``.

    ``put(*tensors)`` takes a batch, every tensor ``[n, ...]`` with the same ``n``; ``sample(n)``
    returns a tuple of ``[n, ...]`` tensors. The shapes and dtypes are fixed by the first ``put``.
    ``watermark`` defaults to half the capacity.
    """

    def __init__(
        self, capacity: int, policy: str = "reservoir", *, min_seen: int = 0, watermark: int | None = None, device=None, seed: int = 0
    ):
        if policy not in POLICIES:
            raise ValueError(f"Reservoir policy must be one of {POLICIES}; got {policy!r}")
        if capacity < 1:
            raise ValueError(f"Reservoir capacity must be >= 1; got {capacity}")
        if min_seen < 0 or (min_seen and policy != "reservoir"):
            raise ValueError(
                f"min_seen={min_seen}: it must be >= 0 and applies to the 'reservoir' policy only (fifo and firo use every sample once)"
            )
        watermark = capacity // 2 if watermark is None else watermark
        if not 1 <= watermark <= capacity:
            raise ValueError(f"Reservoir watermark must be in [1, capacity={capacity}]; got {watermark}")
        self.capacity, self.policy, self.min_seen, self.watermark = capacity, policy, min_seen, watermark
        self.device = torch.device(device or "cpu")
        self.counters = ReservoirCounters()
        self._rng = np.random.default_rng(seed)
        self._occupied = np.zeros(capacity, dtype=bool)
        self._arrival = np.zeros(capacity, dtype=np.int64)  # admission order, for fifo
        self._seen = np.zeros(capacity, dtype=np.int64)
        self._storage: list[torch.Tensor] | None = None
        self._layout: list[tuple[tuple[int, ...], torch.dtype]] | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray, tuple[torch.Tensor, ...]]] = []  # (slots, positions in the batch, batch)
        self._started = False
        self._closed = False
        self._condition = threading.Condition()

    # ----- state -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._occupied.sum())

    @property
    def started(self) -> bool:
        """Whether the watermark has been reached (it stays reached)."""
        return self._started

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Refuses further puts and wakes every waiting producer and consumer."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def seen_counts(self) -> np.ndarray:
        """Returns how many times each sample now held has been drawn."""
        with self._condition:
            return self._seen[self._occupied].copy()

    # ----- producers -------------------------------------------------------------------------
    def put(self, *tensors: torch.Tensor, timeout: float | None = None) -> int:
        """Offers a batch of samples; returns how many of them were handled (admitted or discarded).

        Waits while the policy has no room (``fifo``, ``firo``, ``min_seen``); with ``timeout`` it
        returns early with the count handled so far, so a producer can check for shutdown and offer
        the rest again. Raises ReservoirClosed after ``close``.
        """
        n = self._check(tensors)
        deadline = None if timeout is None else time.monotonic() + timeout
        handled = 0
        with self._condition:
            while handled < n:
                if self._closed:
                    raise ReservoirClosed("the reservoir is closed")
                slots, chosen = self._admit(n - handled)
                if chosen == 0:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._condition.wait(remaining)
                    continue
                sources = np.flatnonzero(slots >= 0) + handled
                if len(sources):
                    self._pending.append((slots[slots >= 0], sources, tensors))
                handled += chosen
                if not self._started and self.counters.admitted >= self.watermark:
                    self._started = True
                self._condition.notify_all()
        return handled

    def _check(self, tensors: tuple[torch.Tensor, ...]) -> int:
        if not tensors or len({len(t) for t in tensors}) != 1:
            raise ValueError("put takes one or more tensors [n, ...] with the same n")
        given = [(tuple(t.shape[1:]), t.dtype) for t in tensors]
        with self._condition:
            self._layout = self._layout or given
        if given != self._layout:
            raise ValueError(f"put got samples of (shape, dtype) {given}; this reservoir holds {self._layout}")
        return len(tensors[0])

    def _apply_pending(self) -> None:
        """Copies the admitted samples into their slots, on the consumer's thread (and CUDA stream).

        ``put`` only books slots: a tensor operation on a producer thread would start a second
        OpenMP thread team, and on 2 CPU cores that alone slowed training by 30% (measured), so
        every copy happens here, where the trainer calls ``sample``.
        """
        if self._storage is None and self._layout is not None:
            self._storage = [torch.empty((self.capacity, *shape), dtype=dtype, device=self.device) for shape, dtype in self._layout]
        for slots, sources, tensors in self._pending:
            index = self._device_index(slots)
            contiguous = sources[-1] - sources[0] + 1 == len(sources)
            for stored, tensor in zip(self._storage, tensors, strict=True):
                chosen = (
                    tensor[int(sources[0]) : int(sources[-1]) + 1] if contiguous else tensor[torch.as_tensor(sources, device=tensor.device)]
                )
                stored.index_copy_(0, index, chosen.to(self.device, non_blocking=True))
                if tensor.is_cuda:
                    # The producer allocated it on its own stream: without this, the caching allocator
                    # could hand its memory back to the producer before this stream's copy has run.
                    tensor.record_stream(torch.cuda.current_stream(tensor.device))
        self._pending.clear()

    def _admit(self, n: int) -> tuple[np.ndarray, int]:
        """Decides the fate of up to ``n`` offered samples: returns (slot per sample or -1 for discarded, number decided)."""
        free = np.flatnonzero(~self._occupied)
        slots: list[int] = []
        for slot in free[:n]:
            slots.append(int(slot))
            self._store(int(slot))
        if self.policy != "reservoir" or len(slots) == n:
            return np.asarray(slots, dtype=np.int64), len(slots)  # fifo and firo: the rest waits for the trainer
        if self.min_seen:  # Melissa's rule; fresh samples are never eligible, so one scan serves the whole batch
            eligible = np.flatnonzero(self._occupied & (self._seen >= self.min_seen))
            victims = self._rng.choice(eligible, size=min(n - len(slots), len(eligible)), replace=False)
        else:  # Algorithm R: the t-th sample offered replaces a random one with probability capacity / t
            victims = []
            for _ in range(n - len(slots)):
                if self._rng.random() < self.capacity / (self.counters.offered + len(victims) + 1):
                    victims.append(int(self._rng.integers(self.capacity)))
                else:
                    victims.append(-1)
        for slot in victims:
            slot = int(slot)
            if slot < 0:
                self.counters.discarded += 1
            else:
                if slot in slots:  # replaced again within this batch: the earlier sample is never copied in
                    slots[slots.index(slot)] = -1
                self.counters.evicted += 1
                self._retire(slot)
                self._store(slot)
            slots.append(slot)
        return np.asarray(slots, dtype=np.int64), len(slots)

    def _store(self, slot: int) -> None:
        self._occupied[slot] = True
        self._seen[slot] = 0
        self._arrival[slot] = self.counters.admitted
        self.counters.admitted += 1

    def _retire(self, slot: int) -> None:
        self.counters.reuse[int(self._seen[slot])] += 1
        self._occupied[slot] = False

    def _device_index(self, slots: np.ndarray) -> torch.Tensor:
        """Returns ``slots`` as an index tensor on the device, copied from pinned memory so the host does not wait."""
        index = torch.as_tensor(slots)
        if self.device.type == "cuda":
            index = index.pin_memory().to(self.device, non_blocking=True)
        return index

    # ----- the trainer -----------------------------------------------------------------------
    def sample(self, n: int, timeout: float | None = None) -> tuple[torch.Tensor, ...]:
        """Returns ``n`` samples as a tuple of ``[n, ...]`` tensors on the reservoir's device, chosen by the policy.

        Waits until the watermark is reached and (fifo, firo) ``n`` samples are held. Once the
        reservoir is closed, it returns what is left (fewer than ``n`` for fifo and firo) and raises
        ReservoirClosed when nothing is. Raises TimeoutError after ``timeout`` seconds of waiting.
        """
        if not 1 <= n <= self.capacity:
            raise ValueError(f"sample size must be in [1, capacity={self.capacity}]; got {n}")
        with self._condition:
            waited = time.perf_counter()
            ready = lambda: self._closed or (self._started and (self.policy == "reservoir" or len(self) >= n))  # noqa: E731
            if not self._condition.wait_for(ready, timeout):
                self.counters.waiting_seconds += time.perf_counter() - waited
                raise TimeoutError(f"no batch of {n} within {timeout} s: {len(self)} samples held, watermark {self.watermark}")
            self.counters.waiting_seconds += time.perf_counter() - waited
            held = np.flatnonzero(self._occupied)
            if len(held) == 0:
                raise ReservoirClosed("the reservoir is closed and empty")
            take = min(n, len(held))
            if self.policy == "fifo":
                slots = held[np.argsort(self._arrival[held], kind="stable")[:take]]
            else:
                slots = self._rng.choice(held, size=take, replace=False)
            if take < n and self.policy == "reservoir":  # fewer than n held (a small watermark, or closed): draw with repeats
                slots = self._rng.choice(held, size=n, replace=True)
            first_draws = int((self._seen[np.unique(slots)] == 0).sum())
            np.add.at(self._seen, slots, 1)
            self.counters.unique_drawn += first_draws
            self.counters.draws += len(slots)
            self._apply_pending()
            index = self._device_index(slots)
            batch = tuple(stored.index_select(0, index) for stored in self._storage)
            if self.policy != "reservoir":
                for slot in slots:
                    self._retire(int(slot))
                self.counters.used_up += len(slots)
            self._condition.notify_all()
            return batch
