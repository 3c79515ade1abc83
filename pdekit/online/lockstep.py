"""Data-parallel ranks training online in step: each rank says whether it has a batch, and all take one or none.

Under DDP every rank must run the same number of optimiser steps, or the gradient all-reduce of the
ranks that step on waits for ever. Each rank draws from its own reservoir, fed by its own share of
the stream, so the ranks agree before every batch: a rank whose reservoir has no batch yet holds
the others back until it has one (the time is the ``peer_waiting_seconds``), and once any rank's
share of a finite stream is spent, or its generator failed, every rank ends the epoch together, no
rank having drawn a batch it does not train on. The agreement is one small all-reduce on a gloo
group (host memory), so it never synchronises a GPU.
"""

from __future__ import annotations

import time
from datetime import timedelta
from enum import IntEnum

import torch
import torch.distributed as dist

WAIT_LIMIT = timedelta(hours=24)
"""How long a rank waits for the others in the lockstep's group before gloo gives up: a slow producer,
or rank 0 generating the validation store, are legitimate waits far longer than the default groups'
(10 or 30 minutes)."""


class Readiness(IntEnum):
    """What a rank can do next; the ranks take the least of theirs."""

    FAILED = -1  # its generator stopped with an error
    SPENT = 0  # its share of a finite stream is used up
    READY = 1  # it has a batch


class Lockstep:
    """Agreement of ``replicas`` DDP processes on each online batch; a single process agrees with itself.

    Args:
        replicas: the number of processes; 1 needs no process group.
        group: the gloo process group to agree in; None: a new one over every process, waiting up to
            ``WAIT_LIMIT`` (collective: every rank must construct its Lockstep at the same point).
    """

    def __init__(self, replicas: int = 1, group: dist.ProcessGroup | None = None):
        self.replicas = replicas
        self.peer_waiting_seconds = 0.0
        self._group = group
        if replicas > 1 and group is None:
            self._group = dist.new_group(backend="gloo", timeout=WAIT_LIMIT)

    def wait_for_all(self) -> None:
        """Waits until every rank has reached this point (e.g. rank 0 has written what the others read)."""
        if self.replicas > 1:
            self.agree(Readiness.READY)

    def fail_together(self, error: BaseException | None) -> None:
        """Raises on every rank if any rank has an ``error`` (its own, or a RuntimeError naming another rank's), so none waits for ever.

        Raises:
            RuntimeError: some rank's ``error`` is set.
        """
        if self.agree(Readiness.FAILED if error is not None else Readiness.READY) is Readiness.FAILED:
            if error is not None:
                raise RuntimeError(f"the online generator stopped: {error}") from error
            raise RuntimeError("the online generator of another rank stopped; its error is in that rank's log")

    def agree(self, readiness: Readiness) -> Readiness:
        """Returns the least readiness over all ranks, waiting for every rank to say its own."""
        if self.replicas == 1:
            return readiness
        value = torch.tensor([int(readiness)], dtype=torch.int64)
        started = time.perf_counter()
        dist.all_reduce(value, op=dist.ReduceOp.MIN, group=self._group)
        self.peer_waiting_seconds += time.perf_counter() - started
        return Readiness(int(value))

    def gather(self, values: list[float]) -> list[list[float]]:
        """Returns every rank's ``values`` (the same length on each), in rank order."""
        if self.replicas == 1:
            return [list(values)]
        mine = torch.tensor(values, dtype=torch.float64)
        every = [torch.empty_like(mine) for _ in range(self.replicas)]
        dist.all_gather(every, mine, group=self._group)
        return [v.tolist() for v in every]
