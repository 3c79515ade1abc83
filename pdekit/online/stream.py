"""The trainer's side of online training: its configuration, and epochs of batches drawn from a reservoir."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch

from pdekit.online.generator import Generator
from pdekit.online.lockstep import Lockstep, Readiness
from pdekit.online.reservoir import POLICIES, Reservoir, ReservoirCounters


@dataclass(frozen=True)
class OnlineConfig:
    """Settings of an online run (``pdekit online``); the ``[online]`` section of a run's configuration.

    The default ``min_seen=1`` (Melissa's rule) throttles the solver to the trainer's pace and
    replaces only windows already used; pure Algorithm R (``min_seen=0``) never holds a fast solver
    back, and on a long stream it admits new windows ever more rarely (``capacity / t``), so training
    sees fewer new samples while the solver burns compute.

    Args:
        recipe: the simulations to stream, a name in ``pdekit.data.RECIPES``; None: none (an offline run).
        policy: the reservoir's policy, one of ``pdekit.online.POLICIES``.
        capacity: windows the reservoir holds.
        min_seen: with the ``reservoir`` policy, replace only windows drawn at least this often (see ``Reservoir``).
        watermark: windows held before training starts, in ``[1, capacity]``; None: half the capacity.
        steps_per_epoch: batches per epoch.
        members: stream members in all, at least 1; None: no end.
        batch_size: members per solver call, at least 1; None: the recipe's.
        workers: the producers, as ``Generator``'s ``workers``: ``N >= 1`` CPU processes, 0 one thread
            of the training process on ``solver_device``; None: the default, a thread when the solver
            device is a GPU and one process on the CPU. Not with ``scheduler``.
        scheduler: the address of a dask scheduler whose workers solve; None: local producers.
        solver_device: the device of the solver thread; None: the training device.
        validation_store: a store whose held-out members (the last ``data.validation_fraction`` of
            it, as offline training holds out) validate the run; None: ``validation_members``
            members generated once into the run directory with a seed of their own.
        validation_members: how many validation members to generate when ``validation_store`` is None.
        tee: a new Zarr store that also receives every streamed member (needs ``members``); None: none.

    A None setting is left out of a saved ``config.toml`` (TOML has no null) and reads back as None.
    Files of earlier pdekit versions wrote ``0`` (``watermark``, ``members``, ``batch_size``) or ``""``
    (``recipe``, ``scheduler``, ``solver_device``, ``validation_store``, ``tee``) for "not set", and
    ``workers = 0`` beside a ``scheduler`` for the default; those read as None, meaning what they meant.

    Raises:
        ValueError: an unknown ``policy`` (naming the choices), a value below its least, a
            ``watermark`` outside ``[1, capacity]``, ``tee`` without ``members``, or both ``workers`` and
            ``scheduler``.
    """

    recipe: str | None = None
    policy: str = "reservoir"
    capacity: int = 2048
    min_seen: int = 1
    watermark: int | None = None
    steps_per_epoch: int = 100
    members: int | None = None
    batch_size: int | None = None
    workers: int | None = None
    scheduler: str | None = None
    solver_device: str | None = None
    validation_store: str | None = None
    validation_members: int = 16
    tee: str | None = None

    def __post_init__(self) -> None:
        # config.toml files of earlier pdekit versions hold 0 or "" for "not set": it meant what None means now
        for name, unset in (
            ("recipe", ""),
            ("watermark", 0),
            ("members", 0),
            ("batch_size", 0),
            ("scheduler", ""),
            ("solver_device", ""),
            ("validation_store", ""),
            ("tee", ""),
        ):
            if getattr(self, name) == unset:
                object.__setattr__(self, name, None)
        if self.workers == 0 and self.scheduler is not None:
            # run directories written before pdekit 0.2 saved workers = 0 for "the default", scheduler runs among them
            object.__setattr__(self, "workers", None)
        if self.policy not in POLICIES:
            raise ValueError(f"online.policy must be one of {sorted(POLICIES)}; got {self.policy!r}")
        for name, lowest in (
            ("capacity", 1),
            ("steps_per_epoch", 1),
            ("validation_members", 1),
            ("members", 1),
            ("workers", 0),
            ("min_seen", 0),
            ("batch_size", 1),
        ):
            value = getattr(self, name)
            if value is not None and value < lowest:
                raise ValueError(f"online.{name} must be >= {lowest}; got {value}")
        if self.watermark is not None and not 1 <= self.watermark <= self.capacity:
            raise ValueError(
                f"online.watermark must be in [1, capacity={self.capacity}] (or left out: half the capacity); got {self.watermark}"
            )
        if self.tee is not None and self.members is None:
            raise ValueError("online.tee needs online.members (the number of members the store will hold)")
        if self.workers is not None and self.scheduler is not None:
            raise ValueError(
                f"online.workers={self.workers} and online.scheduler={self.scheduler!r}: solve in local processes or on a dask cluster, "
                "not both"
            )


class ReservoirBatches:
    """An epoch of ``steps`` batches of ``batch_size`` samples drawn from ``reservoir``: what ``Trainer.fit`` iterates.

    Batches are ``(inputs, targets, dt, params)`` as a DataLoader over ``pdekit.data.Windows`` yields.
    When the reservoir is closed (a finite stream fully delivered) it drains, and once it is spent the
    epoch ends early and ``exhausted`` is set: the Trainer stops there, every window having been
    trained on (``Reservoir``'s docstring gives each policy's rule). If the generator failed, its
    error is raised here instead of training on silently.

    Under DDP (``lockstep`` over several processes) the ranks agree before every batch
    (``pdekit.online.lockstep``): a rank whose reservoir is not ready holds the others back (they
    wait; ``peer_waiting_fraction``), and once any rank's share is spent, or any rank's generator
    failed, every rank ends the epoch at the same step (``epoch_cut``). Windows still held by the
    other ranks then are never trained on; ``samples_left`` counts them.

    ``summary()`` returns the epoch's stream figures, which the Trainer adds to its metrics;
    ``state_dict()`` the reservoir's and the generator's state, which the Trainer saves beside each
    checkpoint.

    Args:
        reservoir: where the batches come from.
        batch_size: samples per batch, at most the reservoir's capacity.
        steps: batches per epoch.
        generator: the Generator filling ``reservoir``, whose error ends the epoch and whose counters
            ``summary`` reports; None: no generator to watch.
        lockstep: the DDP ranks' agreement; None: one process.

    Raises:
        ValueError: ``batch_size`` exceeds the reservoir's capacity.
    """

    def __init__(
        self, reservoir: Reservoir, batch_size: int, steps: int, generator: Generator | None = None, lockstep: Lockstep | None = None
    ):
        if batch_size > reservoir.capacity:
            raise ValueError(f"batch_size {batch_size} exceeds the reservoir capacity {reservoir.capacity}")
        self.reservoir, self.batch_size, self.steps, self.generator = reservoir, batch_size, steps, generator
        self.lockstep = lockstep or Lockstep()
        self.exhausted = False
        self.steps_taken = 0
        self._epoch_started = time.perf_counter()
        self._waited_before = 0.0
        self._peers_waited_before = 0.0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        self._epoch_started = time.perf_counter()
        self._waited_before = self.reservoir.counters.waiting_seconds
        self._peers_waited_before = self.lockstep.peer_waiting_seconds
        self.steps_taken = 0
        for _ in range(self.steps):
            readiness = self.lockstep.agree(self._readiness())
            if readiness is Readiness.FAILED:
                self.lockstep.fail_together(self._error())  # raises on every rank
            if readiness is Readiness.SPENT:
                self.exhausted = True
                return
            self.steps_taken += 1
            yield self.reservoir.sample(self.batch_size)
        self.lockstep.fail_together(self._error())

    def _readiness(self) -> Readiness:
        """Waits until this rank's reservoir has a batch or is spent; returns which, or FAILED if the generator stopped with an error."""
        ready = self.reservoir.wait_ready(self.batch_size)
        if self._error() is not None:
            return Readiness.FAILED
        return Readiness.READY if ready else Readiness.SPENT

    def _error(self) -> BaseException | None:
        return self.generator.error if self.generator is not None else None

    def summary(self) -> dict:
        """Returns the last epoch's waiting fractions and step count, and the totals of the reservoir and the generator so far.

        Under DDP every rank must call it (it gathers each rank's figures); counts are summed over
        the ranks, fractions averaged, and ``*_per_rank`` lists give each rank's own.

        Returns:
            ``waiting_fraction`` (of the epoch's time spent waiting for this rank's reservoir),
            ``peer_waiting_fraction`` (waiting for other ranks), ``epoch_steps``, ``epoch_cut`` (the
            epoch ended before ``steps`` because the stream was spent), ``samples_admitted``,
            ``samples_discarded``, ``samples_evicted``, ``unique_samples_drawn``, ``mean_reuse``,
            ``samples_left`` (held when the stream ended; 0 while it runs), and with a generator
            ``members_solved``, ``members_blown_up``, ``task_failures`` and ``next_member``.
        """
        counters = self.reservoir.counters
        seconds = time.perf_counter() - self._epoch_started
        fraction = (lambda s: s / seconds) if seconds > 0 else (lambda s: 0.0)
        mine = {
            "waiting_fraction": fraction(counters.waiting_seconds - self._waited_before),
            "peer_waiting_fraction": fraction(self.lockstep.peer_waiting_seconds - self._peers_waited_before),
            "samples_admitted": counters.admitted,
            "samples_discarded": counters.discarded,
            "samples_evicted": counters.evicted,
            "unique_samples_drawn": counters.unique_drawn,
            "draws": counters.draws,
            "samples_left": len(self.reservoir) if self.exhausted else 0,
        }
        if self.generator is not None:
            g = self.generator.counters
            mine.update(members_solved=g.members, members_blown_up=g.blown_up, task_failures=g.task_failures)
        every = self.lockstep.gather([float(v) for v in mine.values()])
        record: dict = {"epoch_steps": self.steps_taken, "epoch_cut": self.steps_taken < self.steps}
        for i, name in enumerate(mine):
            values = [rank[i] for rank in every]
            if name.endswith("fraction"):
                record[name] = sum(values) / len(values)
            else:
                values = [int(v) for v in values]
                record[name] = sum(values)
            if self.lockstep.replicas > 1:
                record[f"{name}_per_rank"] = values
        draws = record.pop("draws")
        record.pop("draws_per_rank", None)
        record["mean_reuse"] = ReservoirCounters(draws=draws, unique_drawn=record["unique_samples_drawn"]).mean_reuse  # over every rank
        if self.generator is not None:
            record["next_member"] = self.generator.counters.next_member
        return record

    def state_dict(self) -> dict:
        """Returns what a resumed run needs to continue this rank's stream: the reservoir's state and the generator's counters.

        Every rank must call it (the ranks check together that no generator failed). The reservoir's
        state, stream position included, is exact; the generator's counters are a report read beside
        it, and may be off by the batch being delivered at that moment.

        Raises:
            RuntimeError: a rank's generator stopped with an error.
        """
        state: dict = {"reservoir": self.reservoir.state_dict(), "replicas": self.lockstep.replicas}
        # A failed generator closes the reservoir after setting its error: a state taken after that
        # would resume as a finished stream, so it is never saved, and every rank stops together.
        self.lockstep.fail_together(self._error())
        if self.generator is not None:
            state["generator"] = asdict(self.generator.counters)
        return state
