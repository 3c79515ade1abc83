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

**The end of a finite stream** (``close``, which the Generator calls once every member is in): no
sample is admitted any more, and the reservoir drains: every policy now removes what it returns
(``reservoir`` draws uniformly at random among the samples held, without replacement), ``sample``
returns what is left when fewer than ``n`` remain, and then raises ``ReservoirClosed``. So every
admitted sample still held at the end is drawn exactly once more (fifo and firo: every admitted
sample is drawn exactly once in all; ``reservoir`` with ``min_seen >= 1``: at least once), and
training ends instead of redrawing the last windows without end. Melissa's FIFO and FIRO buffers are
likewise told when reception is over (its documentation: a ``ReceptionDependant`` mixin, and a
number of batches "deterministic for FIFO and FIRO"). The ``reservoir`` drain is pdekit's own rule,
not taken from Melissa's Reservoir: it gives the guarantee the other two give, that training ends
having used what it admitted.

**State.** ``state_dict()`` holds everything a restart needs to continue with the same reservoir:
the samples held, each slot's arrival and draw count, the counters, the policy's random state, the
watermark and closed flags, and the stream ``position`` of the last sample handled (the producer's
own ``(key, index)``, given to ``put``); ``load_state_dict`` restores it into a reservoir of the same
capacity and policy, bit for bit.

All bookkeeping (which slots hold what, how often each was drawn) lives on the host in numpy; the
samples live in preallocated device tensors. ``put`` only books slots and keeps a reference to the
batch; ``sample`` copies what was booked into the storage and gathers its batch, all on the trainer's
thread and current CUDA stream, never synchronising the device. Producers that compute on their own
stream must finish their work before ``put`` (``pdekit.online.Generator`` does).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np
import torch

from pdekit.devices import Device


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


@dataclass
class Slots:
    """The host-side record of a reservoir's slots: which hold a sample, in what order they were admitted, how often each was drawn."""

    occupied: np.ndarray  # bool [capacity]
    arrival: np.ndarray  # int64 [capacity]: the admission count when the slot was filled
    seen: np.ndarray  # int64 [capacity]: draws of the sample the slot holds

    @classmethod
    def empty(cls, capacity: int) -> Slots:
        """Returns the record of ``capacity`` empty slots."""
        return cls(np.zeros(capacity, dtype=bool), np.zeros(capacity, dtype=np.int64), np.zeros(capacity, dtype=np.int64))

    def held(self) -> np.ndarray:
        """Returns the indices of the slots that hold a sample, increasing."""
        return np.flatnonzero(self.occupied)


class Policy(ABC):
    """A reservoir policy: which held samples ``sample`` returns, and what a full reservoir does with a new sample.

    ``uses_each_once``: a drawn sample leaves the reservoir (and a full reservoir makes producers
    wait for the trainer); otherwise samples stay after being drawn. ``min_seen`` is the ``reservoir``
    policy's (see ``Reservoir``); the others refuse it.
    """

    name: ClassVar[str]
    uses_each_once: ClassVar[bool]

    def __init__(self, min_seen: int = 0):
        if min_seen < 0 or (min_seen and self.uses_each_once):
            raise ValueError(
                f"min_seen={min_seen}: it must be >= 0 and applies to the 'reservoir' policy only (fifo and firo use every sample once)"
            )
        self.min_seen = min_seen

    def ready(self, held: int, n: int) -> bool:
        """Returns whether ``held`` samples make a batch of ``n`` (once the watermark is reached)."""
        return held >= n or not self.uses_each_once

    @abstractmethod
    def draw(self, slots: Slots, n: int, rng: np.random.Generator) -> np.ndarray:
        """Returns the slots of the next batch of ``n`` (fewer only when fewer are held and each is used once)."""

    def replace(self, slots: Slots, n: int, offered: int, rng: np.random.Generator) -> list[int]:
        """Returns, for up to ``n`` more samples offered to a full reservoir, the slot each replaces (-1: it is discarded).

        Fewer than ``n`` (none at all for fifo and firo) means the others wait for the trainer.
        ``offered`` counts the samples offered before these.
        """
        return []


class FirstInFirstOut(Policy):
    """``fifo``: ``sample`` returns the oldest samples and removes them."""

    name = "fifo"
    uses_each_once = True

    def draw(self, slots: Slots, n: int, rng: np.random.Generator) -> np.ndarray:
        held = slots.held()
        return held[np.argsort(slots.arrival[held], kind="stable")[:n]]


class FirstInRandomOut(Policy):
    """``firo``: ``sample`` removes samples drawn uniformly at random."""

    name = "firo"
    uses_each_once = True

    def draw(self, slots: Slots, n: int, rng: np.random.Generator) -> np.ndarray:
        held = slots.held()
        return rng.choice(held, size=min(n, len(held)), replace=False)


class ReservoirSampling(Policy):
    """``reservoir``: samples stay after being drawn; a full reservoir replaces by Algorithm R, or by Melissa's rule with ``min_seen``."""

    name = "reservoir"
    uses_each_once = False

    def draw(self, slots: Slots, n: int, rng: np.random.Generator) -> np.ndarray:
        held = slots.held()
        # fewer than n held (a small watermark; a closed reservoir draws through its drain instead): a batch with repeats
        return rng.choice(held, size=n, replace=len(held) < n)

    def replace(self, slots: Slots, n: int, offered: int, rng: np.random.Generator) -> list[int]:
        if self.min_seen:  # Melissa's rule; fresh samples are never eligible, so one scan serves the whole batch
            eligible = np.flatnonzero(slots.occupied & (slots.seen >= self.min_seen))
            return [int(slot) for slot in rng.choice(eligible, size=min(n, len(eligible)), replace=False)]
        capacity = len(slots.occupied)
        victims = []  # Algorithm R: the t-th sample offered replaces a random one with probability capacity / t
        for t in range(offered + 1, offered + n + 1):
            victims.append(int(rng.integers(capacity)) if rng.random() < capacity / t else -1)
        return victims


POLICIES: dict[str, type[Policy]] = {policy.name: policy for policy in (FirstInFirstOut, FirstInRandomOut, ReservoirSampling)}
"""The reservoir policies by name: ``fifo``, ``firo``, ``reservoir`` (the choices of ``pdekit online --policy``)."""


def make_policy(name: str, min_seen: int = 0) -> Policy:
    """Returns the reservoir policy ``name`` (one of ``POLICIES``) with ``min_seen``.

    Raises:
        ValueError: ``name`` is not in ``POLICIES`` (the message lists them), or ``min_seen`` is
            negative or given to a policy that uses each sample once.
    """
    if name not in POLICIES:
        raise ValueError(f"Reservoir policy must be one of {sorted(POLICIES)}; got {name!r}")
    return POLICIES[name](min_seen)


class Reservoir:
    """Holds up to ``capacity`` samples, each a tuple of tensors, on ``device``.

    ``put(*tensors)`` takes a batch, every tensor ``[n, ...]`` with the same ``n``; ``sample(n)``
    returns a tuple of ``[n, ...]`` tensors. The shapes and dtypes are fixed by the first ``put``.

    Args:
        capacity: the most samples held.
        policy: one of ``POLICIES``: ``"fifo"``, ``"firo"`` or ``"reservoir"`` (see the module's docstring).
        min_seen: with ``"reservoir"``, replace only samples drawn at least this often (Melissa's
            rule); 0: Algorithm R.
        watermark: samples admitted before ``sample`` returns anything; None: half the capacity.
        device: where the samples are stored; None: the CPU.
        seed: the seed of the policy's random choices.

    Raises:
        ValueError: an unknown ``policy`` (naming the choices), ``capacity < 1``, a negative
            ``min_seen`` or one given to fifo or firo, or ``watermark`` outside ``[1, capacity]``.
    """

    def __init__(
        self,
        capacity: int,
        policy: str = "reservoir",
        *,
        min_seen: int = 0,
        watermark: int | None = None,
        device: Device | None = None,
        seed: int = 0,
    ):
        rule = make_policy(policy, min_seen)
        if capacity < 1:
            raise ValueError(f"Reservoir capacity must be >= 1; got {capacity}")
        watermark = capacity // 2 if watermark is None else watermark
        if not 1 <= watermark <= capacity:
            raise ValueError(f"Reservoir watermark must be in [1, capacity={capacity}]; got {watermark}")
        self.capacity, self.policy, self.min_seen, self.watermark = capacity, policy, min_seen, watermark
        self.device = torch.device(device or "cpu")
        self.counters = ReservoirCounters()
        self._rule = rule
        self._rng = np.random.default_rng(seed)
        self._slots = Slots.empty(capacity)
        self._storage: list[torch.Tensor] | None = None
        self._layout: list[tuple[tuple[int, ...], torch.dtype]] | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray, tuple[torch.Tensor, ...]]] = []  # (slots, positions in the batch, batch)
        self._started = False
        self._closed = False
        self._drain = FirstInRandomOut()  # what ``reservoir`` becomes once closed: random out, each drawn once more
        self.position: tuple[int, int] | None = None
        self._condition = threading.Condition()

    # ----- state -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._slots.occupied.sum())

    @property
    def started(self) -> bool:
        """Whether the watermark has been reached (it stays reached)."""
        return self._started

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    def close(self) -> None:
        """Ends the stream: refuses further puts, starts draining (see the module's docstring) and wakes every waiting thread."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def seen_counts(self) -> np.ndarray:
        """Returns how many times each sample now held has been drawn: ``[len(self)]`` int64."""
        with self._condition:
            return self._slots.seen[self._slots.occupied].copy()

    # ----- producers -------------------------------------------------------------------------
    def put(self, *tensors: torch.Tensor, timeout: float | None = None, position: tuple[int, int] | None = None) -> int:
        """Offers a batch of samples; returns how many of them were handled (admitted or discarded).

        Waits while the policy has no room (``fifo``, ``firo``, ``min_seen``); with ``timeout`` it
        returns early with the count handled so far, so a producer can check for shutdown and offer
        the rest again. A tensor on another device is copied to the reservoir's by ``sample``, on the
        trainer's thread.

        Args:
            tensors: the parts of the samples, each ``[n, ...]`` with the same ``n``; their shapes
                past the first axis and their dtypes must be those of the first ``put``.
            timeout: the most seconds to wait for room; None: until all ``n`` are handled.
            position: the stream position of the first sample, the producer's ``(key, index)``; after
                ``h`` samples are handled the reservoir's ``position`` is ``(key, index + h)``, under
                the same lock, so ``state_dict`` says exactly where the stream stood. None: untracked.

        Returns:
            The number of leading samples handled, ``n`` unless ``timeout`` ran out.

        Raises:
            ValueError: the tensors disagree in ``n``, or with the reservoir's shapes and dtypes.
            ReservoirClosed: the reservoir is closed (also while waiting).
        """
        n = self._check(tensors)
        deadline = None if timeout is None else time.monotonic() + timeout
        handled = 0
        with self._condition:
            while handled < n:
                if self._closed:
                    raise ReservoirClosed("the reservoir is closed")
                slots = self._admit(n - handled)
                if len(slots):
                    self._book(slots, handled, tensors)
                    handled += len(slots)
                    if position is not None:
                        self.position = (position[0], position[1] + handled)
                elif not self._wait(deadline):
                    break
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

    def _wait(self, deadline: float | None) -> bool:
        """Waits for a change (a draw, a close) until ``deadline`` (``time.monotonic``); returns False once it has passed."""
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        self._condition.wait(remaining)
        return True

    def _book(self, slots: np.ndarray, offset: int, tensors: tuple[torch.Tensor, ...]) -> None:
        """Records that samples ``offset, offset + 1, ...`` of ``tensors`` go into ``slots`` (-1: discarded), to be copied by ``sample``."""
        kept = slots >= 0
        if kept.any():
            self._pending.append((slots[kept], np.flatnonzero(kept) + offset, tensors))
        if not self._started and self.counters.admitted >= self.watermark:
            self._started = True
        self._condition.notify_all()

    def _new_storage(self) -> list[torch.Tensor]:
        """Returns one empty ``[capacity, *shape]`` tensor per element of a sample, as the layout says, on the reservoir's device."""
        assert self._layout is not None  # a sample is held only once a put (or a restored state) has fixed the layout
        return [torch.empty((self.capacity, *shape), dtype=dtype, device=self.device) for shape, dtype in self._layout]

    def _apply_pending(self) -> list[torch.Tensor]:
        """Copies the admitted samples into their slots, on the consumer's thread (and CUDA stream); returns the storage.

        ``put`` only books slots: a tensor operation on a producer thread would start a second
        OpenMP thread team, and on 2 CPU cores that alone slowed training by 30% (measured), so
        every copy happens here, where the trainer calls ``sample``.
        """
        if self._storage is None:
            self._storage = self._new_storage()
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
        return self._storage

    def _admit(self, n: int) -> np.ndarray:
        """Decides the fate of up to ``n`` offered samples: returns the slot of each decided one, -1 where it is discarded.

        Free slots first; then the policy's replacements. Fewer than ``n`` means the rest must wait.
        """
        slots = [int(slot) for slot in np.flatnonzero(~self._slots.occupied)[:n]]
        for slot in slots:
            self._store(slot)
        if len(slots) < n:
            for victim in self._rule.replace(self._slots, n - len(slots), self.counters.offered, self._rng):
                self._replace(victim, slots)
                slots.append(victim)
        return np.asarray(slots, dtype=np.int64)

    def _replace(self, victim: int, booked: list[int]) -> None:
        """Puts a new sample in slot ``victim`` in place of the one there (-1: the new sample is discarded)."""
        if victim < 0:
            self.counters.discarded += 1
            return
        if victim in booked:  # replaced again within this batch: the earlier sample is never copied in
            booked[booked.index(victim)] = -1
        self.counters.evicted += 1
        self._retire(victim)
        self._store(victim)

    def _store(self, slot: int) -> None:
        self._slots.occupied[slot] = True
        self._slots.seen[slot] = 0
        self._slots.arrival[slot] = self.counters.admitted
        self.counters.admitted += 1

    def _retire(self, slot: int) -> None:
        self.counters.reuse[int(self._slots.seen[slot])] += 1
        self._slots.occupied[slot] = False

    def _device_index(self, slots: np.ndarray) -> torch.Tensor:
        """Returns ``slots`` as an index tensor on the device, copied from pinned memory so the host does not wait."""
        index = torch.as_tensor(slots)
        if self.device.type == "cuda":
            index = index.pin_memory().to(self.device, non_blocking=True)
        return index

    # ----- the trainer -----------------------------------------------------------------------
    def _rule_now(self) -> Policy:
        """Returns the policy that decides draws now: the reservoir's own, or the drain's once a keeping policy is closed."""
        return self._drain if self._closed and not self._rule.uses_each_once else self._rule

    def _await_batch(self, n: int, timeout: float | None) -> None:
        """Waits (under the lock) until a batch of ``n`` can be drawn or the reservoir is closed; TimeoutError after ``timeout`` seconds."""
        if not 1 <= n <= self.capacity:
            raise ValueError(f"sample size must be in [1, capacity={self.capacity}]; got {n}")
        waited = time.perf_counter()
        ready = self._condition.wait_for(lambda: self._closed or (self._started and self._rule.ready(len(self), n)), timeout)
        self.counters.waiting_seconds += time.perf_counter() - waited
        if not ready:
            raise TimeoutError(f"no batch of {n} within {timeout} s: {len(self)} samples held, watermark {self.watermark}")

    def wait_ready(self, n: int, timeout: float | None = None) -> bool:
        """Waits until ``sample(n)`` would return at once; returns False if it would raise ``ReservoirClosed`` instead (closed and empty).

        What this returns stays true until this thread draws: producers only add samples. The
        waiting counts in ``counters.waiting_seconds``. DDP ranks agree on it before any of them
        draws, so no rank removes a batch that is then not trained on.

        Raises:
            ValueError: ``n`` is outside ``[1, capacity]``.
            TimeoutError: neither within ``timeout`` seconds.
        """
        with self._condition:
            self._await_batch(n, timeout)
            return len(self) > 0

    def sample(self, n: int, timeout: float | None = None) -> tuple[torch.Tensor, ...]:
        """Returns ``n`` samples chosen by the policy, on the reservoir's device.

        Waits until the watermark is reached and (fifo, firo) ``n`` samples are held. Once the
        reservoir is closed it drains: every policy removes what it returns, and the last batch
        holds what is left (fewer than ``n``).

        Args:
            n: the batch size, in ``[1, capacity]``.
            timeout: the most seconds to wait; None: no limit.

        Returns:
            One ``[n, ...]`` tensor per tensor given to ``put``, in the same order.

        Raises:
            ValueError: ``n`` is outside ``[1, capacity]``.
            TimeoutError: no batch within ``timeout`` seconds.
            ReservoirClosed: the reservoir is closed and empty.
        """
        with self._condition:
            self._await_batch(n, timeout)
            if len(self) == 0:
                raise ReservoirClosed("the reservoir is closed and empty")
            rule = self._rule_now()
            slots = rule.draw(self._slots, n, self._rng)
            self.counters.unique_drawn += int((self._slots.seen[np.unique(slots)] == 0).sum())
            np.add.at(self._slots.seen, slots, 1)
            self.counters.draws += len(slots)
            storage = self._apply_pending()
            index = self._device_index(slots)
            batch = tuple(stored.index_select(0, index) for stored in storage)
            if rule.uses_each_once:
                for slot in slots:
                    self._retire(int(slot))
                self.counters.used_up += len(slots)
            self._condition.notify_all()
            return batch

    # ----- restarts --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Returns the reservoir's whole state, every value loadable under ``torch.load(weights_only=True)``.

        Booked samples are copied in first (on this thread, as ``sample`` does); the samples held
        come back on the CPU, in slot order.

        Returns:
            ``capacity``, ``policy``, ``min_seen``, ``watermark``, ``started``, ``closed``,
            ``position``, ``occupied``/``arrival``/``seen`` (``[capacity]`` tensors), ``layout``
            (shape and dtype name of each part), ``samples`` (one ``[held, ...]`` tensor per part),
            ``counters`` and ``rng`` (the policy's NumPy bit-generator state).
        """
        with self._condition:
            held = self._slots.held()
            samples = []
            if self._layout is not None and len(held):
                storage = self._apply_pending()
                index = self._device_index(held)
                samples = [stored.index_select(0, index).cpu() for stored in storage]
            counters = asdict(self.counters)
            counters["reuse"] = {int(k): int(v) for k, v in self.counters.reuse.items()}
            return {
                "capacity": self.capacity,
                "policy": self.policy,
                "min_seen": self.min_seen,
                "watermark": self.watermark,
                "started": self._started,
                "closed": self._closed,
                "position": None if self.position is None else list(self.position),
                "occupied": torch.from_numpy(self._slots.occupied.copy()),
                "arrival": torch.from_numpy(self._slots.arrival.copy()),
                "seen": torch.from_numpy(self._slots.seen.copy()),
                "layout": None
                if self._layout is None
                else [[list(shape), str(dtype).removeprefix("torch.")] for shape, dtype in self._layout],
                "samples": samples,
                "counters": counters,
                "rng": self._rng.bit_generator.state,
            }

    def load_state_dict(self, state: dict) -> None:
        """Restores a ``state_dict()`` into this reservoir, which must be empty and of the same capacity, policy and ``min_seen``.

        Raises:
            ValueError: the state is of another capacity, policy or ``min_seen`` (naming both), or
                this reservoir has been used.
        """
        mine = {"capacity": self.capacity, "policy": self.policy, "min_seen": self.min_seen}
        theirs = {name: state[name] for name in mine}
        if theirs != mine:
            raise ValueError(f"the saved reservoir has {theirs}; this one {mine}: a reservoir resumes only with its own settings")
        with self._condition:
            if self.counters.offered or self._pending:
                raise ValueError("load_state_dict needs a fresh reservoir; this one has been given samples")
            self.watermark, self._started, self._closed = int(state["watermark"]), bool(state["started"]), bool(state["closed"])
            self.position = None if state["position"] is None else (int(state["position"][0]), int(state["position"][1]))
            self._slots = Slots(state["occupied"].numpy().copy(), state["arrival"].numpy().copy(), state["seen"].numpy().copy())
            counters = dict(state["counters"])
            counters["reuse"] = Counter({int(k): int(v) for k, v in counters["reuse"].items()})
            self.counters = ReservoirCounters(**counters)
            self._rng.bit_generator.state = state["rng"]
            if state["layout"] is not None:
                self._layout = [(tuple(shape), getattr(torch, dtype)) for shape, dtype in state["layout"]]
                self._storage = self._new_storage()
                held = self._device_index(self._slots.held())
                for stored, saved in zip(self._storage, state["samples"], strict=True):
                    if len(saved):
                        stored.index_copy_(0, held, saved.to(self.device))
            self._condition.notify_all()
