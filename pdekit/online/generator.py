"""The data generator of online training: a pdekit solver running beside the trainer, filling a Reservoir.

Members are numbered ``0, 1, 2, ...`` without end. Member ``i`` belongs to block ``b = i // M``
(``M = recipe.members``) and is member ``i % M`` of the recipe drawn with the block's seed (block 0:
``recipe.seed`` itself). So the first ``M`` members of the stream are exactly the members of the
Zarr ensemble ``pdekit generate`` writes from the same recipe, and every later block is a fresh,
independent draw with the recipe's sampling (random, Latin hypercube or Sobol).

Solves run as tasks of one whole batch of members each (``recipe.batch_size``, the offline
partition; members not wanted are dropped after solving, so every member gets its offline bits) on
an executor: a thread on the solver's device (on CUDA, with its own stream so solving overlaps
training), worker processes on the CPU, or any dask.distributed ``Client``. A feeder thread keeps
``in_flight`` tasks submitted, cuts every trajectory into the same windows ``pdekit.data.Windows``
reads from a store, and puts them into the reservoir in stream order, waiting while the reservoir is
full: that wait is the backpressure that stops new submissions. A task that raises is submitted
again (``retries``); a dead worker process is replaced.

**Stream order.** Tasks run concurrently but their windows are put in the order of the batches: a
batch that finishes early waits for those before it. So the windows a reservoir receives are one
fixed sequence, whatever the workers' timing, and where that sequence stood is one pair, ``(first
member of the batch, window index in it)``, which ``Reservoir.put`` records with each put and a
resumed Generator continues from (``resume_at``): no window is offered twice or skipped. The cost
is a wait when one task is slower than the ones after it; batches of one recipe take about equally
long, and ``in_flight`` keeps the workers busy meanwhile.

**Shares** (data-parallel training): ``share=(rank, replicas)`` delivers only the batches whose
index in the stream's partition is ``rank`` modulo ``replicas``, so the ranks' Generators split one
stream into disjoint parts, each member solved and trained by one rank only.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import multiprocessing
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pdekit.data.generate import member_seeds, sample_parameters, solve_batch
from pdekit.data.normalize import FieldStatistics
from pdekit.data.recipes import Recipe
from pdekit.data.schema import StoreError
from pdekit.data.store import Layout, create_store, open_store, variable, write_member
from pdekit.data.windows import cut_windows, uniform_step
from pdekit.devices import Device, resolve_device
from pdekit.online.reservoir import Reservoir, ReservoirClosed
from pdekit.online.workers import solver_worker_initializer
from pdekit.seeds import derived_seed

log = logging.getLogger(__name__)


# ----- the stream's members ---------------------------------------------------------------------
def block_seed(recipe: Recipe, block: int) -> int:
    """Returns the seed of block ``block`` of the stream: the recipe's own for block 0, ``derived_seed(recipe.seed, block)`` after."""
    if block == 0:
        return recipe.seed
    return derived_seed(recipe.seed, block)


_blocks: dict[tuple[str, int], tuple[dict[str, np.ndarray], np.ndarray]] = {}


def _block(recipe: Recipe, block: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    key = (repr(recipe), block)  # a Recipe holds a dict, so it cannot be a key itself
    if key not in _blocks:
        if len(_blocks) > 16:
            _blocks.clear()
        drawn = recipe.with_overrides(seed=block_seed(recipe, block))
        _blocks[key] = sample_parameters(drawn), member_seeds(drawn)
    return _blocks[key]


def stream_parameters_and_seeds(recipe: Recipe, members: Sequence[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Returns the parameters and initial-condition seeds of stream members ``members``.

    Member ``i`` is member ``i % recipe.members`` of the recipe drawn with ``block_seed(recipe, i // recipe.members)``.

    Args:
        recipe: the streamed recipe.
        members: stream member numbers ``>= 0``.

    Returns:
        ``(parameters, seeds)``: parameter name -> ``[n]`` float64 for ``recipe.parameter_names``, and
        ``[n]`` int64 seeds, in the order of ``members``.
    """
    names = recipe.parameter_names
    parameters = {name: np.empty(len(members)) for name in names}
    seeds = np.empty(len(members), dtype=np.int64)
    blocks: dict[int, tuple[dict[str, np.ndarray], np.ndarray]] = {}  # looked up once per block, not per member
    for i, member in enumerate(members):
        block = member // recipe.members
        if block not in blocks:
            blocks[block] = _block(recipe, block)
        block_parameters, block_seeds = blocks[block]
        for name in names:
            parameters[name][i] = block_parameters[name][member % recipe.members]
        seeds[i] = block_seeds[member % recipe.members]
    return parameters, seeds


@dataclass
class Solved:
    """A solved batch of stream members, as ``solve_members`` returns it.

    Args:
        members: the stream members solved, in the order of ``trajectories``.
        trajectories: ``[n, time, C, *space]`` float32, the recipe's fields on its stored grid at
            ``t = 0`` and ``recipe.times``, in physical units.
        parameters: ``[n, P]`` float32, in ``recipe.parameter_names`` order.
        failed: ``(member, time)`` of each member that blew up, and the output time it was found non-finite.
    """

    members: list[int]
    trajectories: torch.Tensor
    parameters: torch.Tensor
    failed: list[tuple[int, float]] = field(default_factory=list)


def solve_members(recipe: Recipe, members: Sequence[int], device: Device | None = None) -> Solved:
    """Solves stream members ``members`` together, as ``pdekit generate`` solves a batch; returns their trajectories.

    Members that blow up are dropped (and listed in ``failed``) and the rest are solved again, so
    one unstable member does not cost its batch (``pdekit.data.generate.solve_batch``, the function
    ``pdekit generate`` uses).

    Args:
        recipe: the streamed recipe.
        members: the stream members to solve, as one solver batch.
        device: the solver's device; None: ``pdekit.devices.default_device()``.

    Returns:
        The trajectories and parameters of the members that stayed finite, and those that did not.
    """
    members = list(members)
    parameters, seeds = stream_parameters_and_seeds(recipe, members)
    batch = solve_batch(recipe, parameters, seeds, resolve_device(device))
    names = recipe.parameter_names
    kept = np.stack([parameters[n][batch.solved] for n in names], -1) if names else np.zeros((len(batch.solved), 0))
    return Solved(
        [members[i] for i in batch.solved],
        batch.trajectories.float(),
        torch.tensor(kept, dtype=torch.float32),
        [(members[i], failure_time) for i, failure_time in batch.failed],
    )


@dataclass(frozen=True)
class Windowing:
    """How a producer turns trajectories into samples: the window, the normalisation, the time step."""

    input_steps: int
    target_steps: int
    stride: int
    dt: float
    statistics: FieldStatistics | None = None
    keep_trajectories: bool = False  # for a tee store


@dataclass
class Produced:
    """A producer's result: ``samples = (inputs, targets, dt, params)`` of ``members``, their trajectories when kept, the members that blew
    up."""

    members: list[int]
    samples: tuple[torch.Tensor, ...]
    trajectories: torch.Tensor | None
    failed: list[tuple[int, float]]


_streams: dict[tuple[int, torch.device], torch.cuda.Stream] = {}


def produce(
    solve: Callable[..., Solved],
    recipe: Recipe,
    members: Sequence[int],
    device: Device,
    windowing: Windowing,
    drop: frozenset = frozenset(),
) -> Produced:
    """Solves ``members`` with ``solve`` and cuts their windows, where the task runs (thread, process or dask worker).

    The trainer's side then only copies samples into the reservoir. On CUDA the work runs on a stream
    of its own per thread, finished before returning, so the result may be used on any stream.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return _produce(solve, recipe, members, device, windowing, drop)
    stream = _streams.setdefault((threading.get_ident(), device), torch.cuda.Stream(device))
    with torch.cuda.stream(stream):
        produced = _produce(solve, recipe, members, device, windowing, drop)
    stream.synchronize()  # the producer waits for its own kernels; the trainer never does
    return produced


def _produce(
    solve: Callable[..., Solved], recipe: Recipe, members: Sequence[int], device: torch.device, w: Windowing, drop: frozenset
) -> Produced:
    solved = solve(recipe, members, device)
    kept = [i for i, m in enumerate(solved.members) if m not in drop]
    if not kept:
        return Produced([], (), None, solved.failed)
    if len(kept) < len(solved.members):  # solved with its whole offline batch, then dropped: the batch decides the bits
        index = torch.tensor(kept)  # on the host, where the parameters are; the trajectories get their own copy
        trajectories = solved.trajectories[index.to(solved.trajectories.device)]
        solved = Solved([solved.members[i] for i in kept], trajectories, solved.parameters[index], solved.failed)
    trajectories = solved.trajectories
    normalized = w.statistics.normalize(trajectories) if w.statistics is not None else trajectories
    inputs, targets = cut_windows(normalized, w.input_steps, w.target_steps, w.stride)
    params = solved.parameters.to(inputs.device).repeat_interleave(len(inputs) // len(solved.members), 0)
    dt = torch.full((len(inputs),), w.dt, dtype=torch.float32, device=inputs.device)
    return Produced(solved.members, (inputs, targets, dt, params), trajectories if w.keep_trajectories else None, solved.failed)


# ----- where the tasks run ----------------------------------------------------------------------
class Executor(ABC):
    """Where a Generator's tasks run: ``task_device`` is the device they solve on, ``in_flight`` the tasks kept submitted by default."""

    task_device: torch.device
    in_flight: int

    @abstractmethod
    def start(self) -> None:
        """Starts the workers (a pool's processes start on the first ``submit``)."""

    @abstractmethod
    def submit(self, fn: Callable[..., Produced], *args: Any) -> Any:
        """Submits ``fn(*args)``; returns its future."""

    @abstractmethod
    def wait_first(self, futures: list, timeout: float) -> list:
        """Returns the futures of ``futures`` that are done, waiting up to ``timeout`` seconds for the first."""

    @abstractmethod
    def restart(self) -> None:
        """Replaces workers that died (a broken process pool); pending futures are lost and must be submitted again."""

    @abstractmethod
    def shutdown(self) -> None:
        """Cancels what is pending and waits for the workers it started."""


class _Pool(Executor):
    """A ``concurrent.futures`` pool, started by ``start`` and started afresh by ``restart``."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.Executor | None = None

    @abstractmethod
    def _new_pool(self) -> concurrent.futures.Executor: ...

    def start(self) -> None:
        self._pool = self._new_pool()

    def submit(self, fn: Callable[..., Produced], *args: Any) -> concurrent.futures.Future:
        if self._pool is None:
            raise RuntimeError("the executor has not been started")
        return self._pool.submit(fn, *args)

    def wait_first(self, futures: list, timeout: float) -> list:
        done, _ = concurrent.futures.wait(futures, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.start()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


class SolverThread(_Pool):
    """One thread of this process, solving on ``device`` (on CUDA with a stream of its own, so solving overlaps training)."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.task_device, self.in_flight = device, 1

    def _new_pool(self) -> concurrent.futures.Executor:
        return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pdekit-generator-solver")


class SolverProcesses(_Pool):
    """``workers`` CPU processes, spawned, each with one torch thread, that exit when this process dies."""

    def __init__(self, workers: int):
        super().__init__()
        self.task_device, self.in_flight, self.workers = torch.device("cpu"), workers + 1, workers

    def _new_pool(self) -> concurrent.futures.Executor:
        # spawn, not fork: forking a process that runs torch threads can deadlock the child. The
        # initializer makes each worker exit when this process dies, even by SIGKILL.
        return concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=solver_worker_initializer,
            initargs=(os.getpid(),),
        )


class DaskWorkers(Executor):
    """The workers of a ``distributed.Client``'s cluster, solving on their CPUs; the cluster is theirs to start and stop."""

    def __init__(self, client: Any):
        self.client = client
        self.task_device, self.in_flight = torch.device("cpu"), len(client.scheduler_info()["workers"]) + 1

    def start(self) -> None:
        """Nothing to start: the cluster runs already."""

    def submit(self, fn: Callable[..., Produced], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def restart(self) -> None:
        """Nothing to replace: the scheduler reruns the tasks of a lost worker on the others."""

    def shutdown(self) -> None:
        """Nothing to stop: the cluster is its owner's; pending futures are cancelled by the Generator."""

    def wait_first(self, futures: list, timeout: float) -> list:
        import distributed

        try:
            distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except distributed.TimeoutError:
            pass
        return [f for f in futures if f.done()]


def executor(workers: int | None, client: Any, device: torch.device) -> Executor:
    """Returns where a Generator's tasks run: ``client``'s cluster, ``workers`` processes, or one thread on ``device``.

    ``workers=None`` (the default) is the thread when ``device`` is a GPU and one process on the CPU.
    """
    if client is not None:
        return DaskWorkers(client)
    if workers is None:
        workers = 0 if device.type == "cuda" else 1
    return SolverProcesses(workers) if workers else SolverThread(device)


# ----- the generator ----------------------------------------------------------------------------
@dataclass
class GeneratorCounters:
    """What a Generator did so far.

    ``members``: members whose windows reached the reservoir; ``blown_up``: members that became
    non-finite (never delivered); ``task_failures``: tasks that raised and were submitted again;
    ``windows``: windows put; ``next_member``: where a resumed stream starts again (no member before
    it is missing; some after it may repeat).
    """

    members: int = 0
    blown_up: int = 0
    task_failures: int = 0
    windows: int = 0
    next_member: int = 0


class Generator:
    """Solves ``recipe``'s members in the background and puts their windows into ``reservoir``.

    Windows are ``(inputs [k, C, *space], targets [m, C, *space], dt [], params [P])`` per sample,
    the layout and values of ``pdekit.data.Windows`` on a store of the same recipe. Each task solves
    a batch and cuts its windows where it runs. Processes are spawned: a script that starts them
    needs the ``if __name__ == "__main__":`` guard, as for DataLoader workers.

    Use as a context manager, or ``start()`` and ``close()``; ``close`` stops the feeder, cancels
    pending tasks and shuts down the workers it started, leaving no thread or process behind. Worker
    processes also exit by themselves when this process dies, SIGKILL included
    (``pdekit.online.workers``); dask workers belong to their cluster and are left alone.

    Args:
        recipe: the streamed recipe.
        reservoir: where the windows go.
        input_steps: states per window's input (``k``).
        target_steps: states per window's target (``m``).
        stride: time steps between window starts.
        statistics: normalise the windows by these; None: physical units.
        start_member: the first stream member delivered.
        members: stream members in all (the stream ends before member ``members``); None: without end.
        exclude: members never delivered (e.g. held-out validation members).
        device: the solver thread's device; None: CUDA when present for the thread, the CPU for
            processes and dask.
        workers: ``N >= 1`` solves in ``N`` CPU processes; 0 in one thread of this process on
            ``device`` (its own CUDA stream on a GPU); None (the default): the thread on a CUDA
            device, one process on the CPU, since torch work in a second thread of the training
            process starts a second OpenMP thread team, which slowed CPU training by 30% on 2 cores
            (measured). Not with ``client``.
        client: a ``distributed.Client`` whose workers solve.
        in_flight: tasks kept submitted; None: one per worker plus one (1 for the thread).
        retries: times a task that raised is submitted again before the stream stops with its error.
        tee: a new Zarr store that receives every solved member's trajectory as ``pdekit generate``
            would write it (needs ``members``).
        solve: replaces ``solve_members`` (same signature; a test's fault injection).
        share: ``(rank, replicas)``: deliver only this rank's share of the stream's batches (see the
            module's docstring); None: all of them.
        resume_at: ``(first member of a batch, windows of it already delivered)``, a reservoir's
            ``position`` at a checkpoint: the stream continues with that batch's next window, and
            nothing before that batch is delivered (it replaces ``start_member``). The batch is
            solved again even when it was delivered whole: its window count is known only then.
            None: start at ``start_member``.

    Raises:
        ValueError: a negative ``workers``, ``workers`` with a ``client``, ``in_flight < 1``,
            ``tee`` without ``members``, or a ``share`` whose rank is outside ``[0, replicas)``; the
            recipe's times are not uniformly spaced.
    """

    def __init__(
        self,
        recipe: Recipe,
        reservoir: Reservoir,
        *,
        input_steps: int = 1,
        target_steps: int = 1,
        stride: int = 1,
        statistics: FieldStatistics | None = None,
        start_member: int = 0,
        members: int | None = None,
        exclude: Sequence[int] = (),
        device: Device | None = None,
        workers: int | None = None,
        client: Any = None,
        in_flight: int | None = None,
        retries: int = 3,
        tee: Any = None,
        solve: Callable[..., Solved] = solve_members,
        share: tuple[int, int] | None = None,
        resume_at: tuple[int, int] | None = None,
    ):
        if workers is not None and workers < 0:
            raise ValueError(f"workers must be >= 0 (0: a thread of this process) or None (the default); got {workers}")
        if workers is not None and client is not None:
            raise ValueError(f"workers={workers} and a dask client: solve in local processes or on the cluster, not both")
        if in_flight is not None and in_flight < 1:
            raise ValueError(f"in_flight must be >= 1 or None (one per worker plus one); got {in_flight}")
        if tee is not None and members is None:
            raise ValueError("tee needs a finite number of members (the store's size)")
        if share is not None and not 0 <= share[0] < share[1]:
            raise ValueError(f"share=(rank, replicas) needs 0 <= rank < replicas; got {share}")
        if resume_at is not None:
            start_member = resume_at[0]
        self.share, self.resume_at = share, resume_at
        self.recipe, self.reservoir = recipe, reservoir
        self.start_member, self.members, self.exclude = start_member, members, frozenset(exclude)
        if device is None and (client is not None or workers):
            device = "cpu"  # processes and dask workers solve on their CPUs
        self.device = resolve_device(device)
        self.executor = executor(workers, client, self.device)
        self.in_flight = self.executor.in_flight if in_flight is None else in_flight
        self.retries, self.tee, self.solve = retries, tee, solve
        self.dt = uniform_step((0.0, *recipe.times), f"recipe {recipe.name!r}")
        self.windowing = Windowing(input_steps, target_steps, stride, self.dt, statistics, keep_trajectories=tee is not None)
        self.counters = GeneratorCounters(next_member=start_member)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        self._pending: dict[Any, tuple[list[int], int]] = {}  # future -> (batch, attempt)
        self._order: collections.deque[list[int]] = collections.deque()  # batches submitted and not yet delivered, in stream order
        self._finished: dict[int, Produced] = {}  # first member -> result, waiting for the batches before it
        self._pools_lost = 0  # worker pools replaced since a task last finished
        self._submitted_until = start_member
        self._tee_group = None

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Generator:
        """Starts the workers and the feeder thread; returns self (and starts nothing for a closed reservoir).

        Raises:
            RuntimeError: it was started before.
            StoreError: the ``tee`` store exists with another number of members.
        """
        if self._feeder is not None:
            raise RuntimeError("the generator has already been started")
        if self.reservoir.closed:  # a finished stream, resumed: nothing to solve, so no workers or tasks
            return self
        if self.tee is not None:
            self._tee_group = self._create_tee()
        self.executor.start()
        self._feeder = threading.Thread(target=self._feed, name="pdekit-generator-feeder", daemon=True)
        self._feeder.start()
        return self

    def close(self) -> None:
        """Stops producing, cancels what is pending and waits for every thread and process it started."""
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join()
        self.executor.shutdown()

    def __enter__(self) -> Generator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Whether the feeder thread is alive."""
        return self._feeder is not None and self._feeder.is_alive()

    # ----- the batches -------------------------------------------------------------------------
    def batches(self) -> Iterator[list[int]]:
        """Yields the member batches still to solve: whole batches of each block's offline partition by ``recipe.batch_size``.

        Batches never straddle blocks (a block of ``M`` members is partitioned as ``pdekit generate``
        partitions the store), and a batch is always solved whole, even when some of its members are
        excluded, were used before ``start_member`` or lie past ``members``: those are dropped after
        solving (``dropped``). The batch's composition sets the bits of every member (batched
        transforms, and the CFL step chosen over the batch), so, with the same device and thread
        count, the stream's members are the offline store's. A batch none of whose members is
        wanted is skipped, and with a ``share`` so is every batch of the other ranks' shares.

        Yields:
            Lists of consecutive stream member numbers.
        """
        size, per_block = self.recipe.batch_size, self.recipe.members
        per_block_batches = -(-per_block // size)
        block = self.start_member // per_block
        while True:
            for index, low in enumerate(range(0, per_block, size)):
                batch = list(range(block * per_block + low, block * per_block + min(low + size, per_block)))
                if self.members is not None and batch[0] >= self.members:
                    return
                if self.share is not None and (block * per_block_batches + index) % self.share[1] != self.share[0]:
                    continue
                if len(self.dropped(batch)) < len(batch):  # something of it is delivered
                    yield batch
            block += 1

    def dropped(self, batch: list[int]) -> frozenset:
        """Returns the members of ``batch`` solved but not delivered: excluded, before ``start_member``, or past ``members``."""
        return frozenset(m for m in batch if m in self.exclude or m < self.start_member or (self.members is not None and m >= self.members))

    # ----- the feeder thread -------------------------------------------------------------------
    def _feed(self) -> None:
        """Keeps ``in_flight`` tasks submitted and delivers their windows as they finish; hands any error to the trainer."""
        try:
            if self._stream(self.batches()):
                self.reservoir.close()  # every member of a finite stream is in the reservoir
        except ReservoirClosed:
            pass  # the trainer is done
        except BaseException as error:  # noqa: BLE001 - hand it to the trainer, which would otherwise wait forever
            self.error = error
            self.reservoir.close()
        finally:
            for future in self._pending:
                future.cancel()

    def _stream(self, batches: Iterator[list[int]]) -> bool:
        """Runs the stream until it is stopped or every batch is delivered; returns whether every batch is."""
        exhausted = False
        while not self._stop.is_set():
            exhausted = exhausted or not self._top_up(batches)
            if not self._pending:
                break
            for future in self.executor.wait_first(list(self._pending), timeout=0.2):
                if not self._collect(future):
                    break  # the pool was replaced: its other finished futures were submitted again
            self._deliver_in_order()
        return exhausted and not self._pending and not self._order

    def _top_up(self, batches: Iterator[list[int]]) -> bool:
        """Submits batches until ``in_flight`` are pending or finished undelivered; returns False once there are no more batches."""
        while len(self._order) < self.in_flight:
            batch = next(batches, None)
            if batch is None:
                return False
            self._pending[self._submit(batch)] = (batch, 0)
            self._order.append(batch)
            self._submitted_until = batch[-1] + 1
        return True

    def _submit(self, batch: list[int]) -> Any:
        try:
            return self.executor.submit(produce, self.solve, self.recipe, batch, *self._task_settings(batch))
        except BrokenProcessPool as error:  # a worker died since the last results were taken: its pool is gone
            self.counters.task_failures += 1
            log.warning("a solver process died (%r); starting new ones and submitting their batches again", error)
            self._replace_pool()
            return self.executor.submit(produce, self.solve, self.recipe, batch, *self._task_settings(batch))

    def _task_settings(self, batch: list[int]) -> tuple:
        return self.executor.task_device, self.windowing, self.dropped(batch)

    def _replace_pool(self) -> None:
        """Starts a new worker pool and submits every pending batch to it (their futures died with the old pool).

        Raises:
            RuntimeError: pools died ``retries + 1`` times in a row with no task finishing in between
                (workers that cannot start: the stream would never move).
        """
        self._pools_lost += 1
        if self._pools_lost > self.retries:
            raise RuntimeError(f"the solver processes died {self._pools_lost} times in a row before finishing a task")
        self.executor.restart()
        pending = list(self._pending.values())
        self._pending = {}
        for batch, attempt in pending:
            self._pending[self._submit(batch)] = (batch, attempt)

    def _collect(self, future: Any) -> bool:
        """Keeps a finished task's result for delivery, or submits its batch again; returns False when the pool had to be replaced."""
        batch, attempt = self._pending.pop(future)
        try:
            produced = future.result()
        except Exception as error:  # noqa: BLE001 - a producer failed: count it, solve the batch again
            return self._retry(batch, attempt, error)
        self._finished[batch[0]] = produced
        self._pools_lost = 0
        return True

    def _deliver_in_order(self) -> None:
        """Delivers the finished batches that every earlier batch has been delivered before."""
        while self._order and self._order[0][0] in self._finished and not self._stop.is_set():
            batch = self._order[0]
            if not self._deliver(batch, self._finished[batch[0]]):
                return  # stopped while waiting for room
            del self._finished[batch[0]]
            self._order.popleft()
            # a resumed run without a reservoir state restarts here: no member before it is missing (some after it may repeat)
            self.counters.next_member = self._order[0][0] if self._order else self._submitted_until

    def _retry(self, batch: list[int], attempt: int, error: Exception) -> bool:
        """Submits a failed batch again (RuntimeError after ``retries``); returns False when a dead worker took the pool with it."""
        self.counters.task_failures += 1
        if attempt >= self.retries:
            raise RuntimeError(f"members {batch[0]}..{batch[-1]} failed {attempt + 1} times; last error: {error!r}") from error
        log.warning("members %d..%d failed (%r); submitting them again", batch[0], batch[-1], error)
        broken = isinstance(error, BrokenProcessPool)
        if broken:  # a worker process died, and every pending task with it: a new pool solves them again
            self._replace_pool()
        self._pending[self._submit(batch)] = (batch, attempt + 1)
        return not broken

    def _deliver(self, batch: list[int], produced: Produced) -> bool:
        """Writes a finished batch to the tee store and puts its samples, waiting while the reservoir is full (backpressure); returns
        False if stopped first.

        Each put carries the stream position ``(batch[0], window index)``; a batch the run resumes
        in (``resume_at``) skips the windows delivered before the checkpoint.
        """
        resumed_in = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == batch[0] else 0
        if not resumed_in:  # a batch the checkpoint was inside had its blow-ups counted before
            self.counters.blown_up += len(produced.failed)
        if not produced.members:
            return True
        if self._tee_group is not None:
            assert produced.trajectories is not None  # a tee keeps the trajectories (Windowing.keep_trajectories)
            for member, trajectory in zip(produced.members, produced.trajectories.cpu().numpy(), strict=True):
                write_member(self._tee_group, member, trajectory)
        samples = produced.samples
        handled = resumed_in
        if handled >= len(samples[0]):
            return True  # delivered whole before the checkpoint (solved again only to find that out)
        while handled < len(samples[0]):
            if self._stop.is_set():
                return False
            handled += self.reservoir.put(*(t[handled:] for t in samples), timeout=0.2, position=(batch[0], handled))
        self.counters.members += len(produced.members)
        self.counters.windows += len(samples[0])
        return True

    def _create_tee(self):
        """Opens the tee store (a resumed run) or creates it with the stream's parameters and seeds of members ``0 .. members - 1``."""
        assert self.members is not None  # checked in __init__
        recipe = self.recipe.with_overrides(members=self.members)
        try:
            group = open_store(self.tee, mode="r+")
        except StoreError:
            group = None
        if group is not None:
            held = variable(group, "member").shape[0]
            if held != self.members:
                raise StoreError(f"{self.tee}: holds {held} members; this stream has {self.members}")
            return group
        parameters, seeds = stream_parameters_and_seeds(self.recipe, range(self.members))
        return create_store(self.tee, Layout.of_recipe(recipe), parameters, seeds)
