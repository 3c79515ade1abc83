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
``in_flight`` tasks submitted, takes results in the order they finish (a slow worker holds up only
its own batch), cuts every trajectory into the same windows ``pdekit.data.Windows`` reads from a
store, and puts them into the reservoir, waiting while the reservoir is full: that wait is the
backpressure that stops new submissions. A task that raises is submitted again (``retries``); a
dead worker process is replaced.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
import torch

from pdekit.data.generate import member_seeds, sample_parameters
from pdekit.data.normalize import FieldStatistics
from pdekit.data.recipes import Recipe, build_solver, record
from pdekit.data.schema import StoreError
from pdekit.data.store import Layout, create_store, open_store, write_member
from pdekit.data.windows import cut_windows, uniform_step
from pdekit.online.reservoir import Reservoir, ReservoirClosed
from pdekit.online.workers import solver_worker_initializer
from pdekit.solvers import BlowUpError

log = logging.getLogger(__name__)


# ----- the stream's members ---------------------------------------------------------------------
def block_seed(recipe: Recipe, block: int) -> int:
    """Returns the seed of block ``block`` of the stream: the recipe's own for block 0."""
    if block == 0:
        return recipe.seed
    return int(np.random.SeedSequence([recipe.seed, block]).generate_state(1, np.uint32)[0])


_blocks: dict[tuple[str, int], tuple[dict[str, np.ndarray], np.ndarray]] = {}


def _block(recipe: Recipe, block: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    key = (repr(recipe), block)  # a Recipe holds a dict, so it cannot be a key itself
    if key not in _blocks:
        if len(_blocks) > 16:
            _blocks.clear()
        drawn = recipe.with_overrides(seed=block_seed(recipe, block))
        _blocks[key] = sample_parameters(drawn), member_seeds(drawn)
    return _blocks[key]


def member_parameters(recipe: Recipe, members: Sequence[int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Returns ``(parameters name -> [n], initial-condition seeds [n])`` of stream members ``members``."""
    names = recipe.parameter_names
    parameters = {name: np.empty(len(members)) for name in names}
    seeds = np.empty(len(members), dtype=np.int64)
    for i, member in enumerate(members):
        block_parameters, block_seeds = _block(recipe, member // recipe.members)
        for name in names:
            parameters[name][i] = block_parameters[name][member % recipe.members]
        seeds[i] = block_seeds[member % recipe.members]
    return parameters, seeds


@dataclass
class Solved:
    """A solved batch: ``trajectories [n, time, C, *space]`` (float32, the recipe's fields on its stored grid, physical units) of
    ``members``, and the members that blew up."""

    members: list[int]
    trajectories: torch.Tensor
    parameters: torch.Tensor  # [n, P] float32, in recipe.parameter_names order
    failed: list[tuple[int, float]] = field(default_factory=list)


def solve_members(recipe: Recipe, members: Sequence[int], device=None) -> Solved:
    """Solves stream members ``members`` together, as ``pdekit generate`` solves a batch; returns their trajectories.

    Members that blow up are dropped (and listed in ``failed``) and the rest are solved again, so
    one unstable member does not cost its batch.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return _solve(recipe, list(members), device)


def _solve(recipe: Recipe, members: list[int], device) -> Solved:
    values, seeds = member_parameters(recipe, members)
    names = recipe.parameter_names
    failed: list[tuple[int, float]] = []
    alive = list(range(len(members)))
    while alive:
        solver = build_solver(recipe, {n: torch.as_tensor(values[n][alive]) for n in names}, device=device)
        u0 = solver.initial_condition(len(alive), seeds=[int(seeds[i]) for i in alive])
        try:
            trajectory = solver.solve(u0, (0.0, *recipe.times), dt=recipe.dt)
        except BlowUpError as error:
            failed += [(members[alive[i]], error.time) for i in error.members]
            alive = [m for j, m in enumerate(alive) if j not in set(error.members)]
            continue
        stored = record(recipe, trajectory).float()
        parameters = torch.tensor(
            np.stack([values[n][alive] for n in names], -1) if names else np.zeros((len(alive), 0)), dtype=torch.float32
        )
        return Solved([members[i] for i in alive], stored, parameters, failed)
    return Solved([], torch.empty(0), torch.empty(0), failed)


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


_streams: dict = {}


def produce(
    solve: Callable[..., Solved], recipe: Recipe, members: Sequence[int], device, windowing: Windowing, drop: frozenset = frozenset()
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


def _produce(solve, recipe, members, device, w: Windowing, drop: frozenset) -> Produced:
    solved = solve(recipe, members, device)
    kept = [i for i, m in enumerate(solved.members) if m not in drop]
    if not kept:
        return Produced([], (), None, solved.failed)
    if len(kept) < len(solved.members):  # solved with its whole offline batch, then dropped: the batch decides the bits
        index = torch.tensor(kept, device=solved.trajectories.device)
        solved = Solved([solved.members[i] for i in kept], solved.trajectories[index], solved.parameters[index.cpu()], solved.failed)
    trajectories = solved.trajectories
    normalized = w.statistics.normalize(trajectories) if w.statistics is not None else trajectories
    inputs, targets = cut_windows(normalized, w.input_steps, w.target_steps, w.stride)
    params = solved.parameters.to(inputs.device).repeat_interleave(len(inputs) // len(solved.members), 0)
    dt = torch.full((len(inputs),), w.dt, dtype=torch.float32, device=inputs.device)
    return Produced(solved.members, (inputs, targets, dt, params), trajectories if w.keep_trajectories else None, solved.failed)


# ----- the generator ----------------------------------------------------------------------------
@dataclass
class GeneratorCounters:
    """Members solved, failed (blew up) and skipped; tasks that raised and were resubmitted; windows put."""

    members: int = 0
    blown_up: int = 0
    task_failures: int = 0
    windows: int = 0
    next_member: int = 0


class Generator:
    """Solves ``recipe``'s members in the background and puts their windows into ``reservoir``.

    Windows are ``(inputs [k, C, *space], targets [m, C, *space], dt [], params [P])`` per sample, normalised
    by ``statistics`` when given: the layout and values of ``pdekit.data.Windows`` on a store of the
    same recipe. Members run from ``start_member`` up to ``members`` in all (None: without end);
    those in ``exclude`` (e.g. held-out validation members) are never solved.

    Executors: ``workers=0`` solves in one thread on ``device`` (its own CUDA stream on a GPU);
    ``workers=N`` in ``N`` CPU processes; ``client`` (a ``distributed.Client``) on a dask cluster. The
    default (``None``) is the thread on a CUDA device and one process on the CPU: torch work in a
    second thread of the training process starts a second OpenMP thread team, which slowed CPU
    training by 30% on 2 cores (measured). Each task solves a batch and cuts its windows where it
    runs. Processes are spawned: a script that starts them needs the ``if __name__ == "__main__":``
    guard, as for DataLoader workers. ``in_flight`` tasks are kept submitted (default: one per worker plus one). ``tee`` names a
    new Zarr store that receives every solved member's trajectory as ``pdekit generate`` would write
    it (needs a finite ``members``). ``solve`` replaces ``solve_members`` (same signature; a test's
    fault injection).

    Use as a context manager, or ``start()`` and ``close()``; ``close`` stops the feeder, cancels
    pending tasks and shuts down the workers it started, leaving no thread or process behind. Worker
    processes also exit by themselves when this process dies, SIGKILL included
    (``pdekit.online.workers``); dask workers belong to their cluster and are left alone.
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
        device=None,
        workers: int | None = None,
        client=None,
        in_flight: int | None = None,
        retries: int = 3,
        tee=None,
        solve: Callable[..., Solved] = solve_members,
    ):
        if workers is not None and (workers < 0 or (workers and client is not None)):
            raise ValueError(f"workers={workers}: use workers >= 0 for local processes, or a dask client, not both")
        if tee is not None and members is None:
            raise ValueError("tee needs a finite number of members (the store's size)")
        self.recipe, self.reservoir = recipe, reservoir
        self.start_member, self.members, self.exclude = start_member, members, frozenset(exclude)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() and not workers and client is None else "cpu"))
        if workers is None:
            workers = 0 if self.device.type == "cuda" or client is not None else 1
        self.workers, self.client = workers, client
        self.in_flight = in_flight or (
            workers + 1 if workers else (len(client.scheduler_info()["workers"]) + 1 if client is not None else 1)
        )
        self.retries, self.tee, self.solve = retries, tee, solve
        self.dt = uniform_step((0.0, *recipe.times), f"recipe {recipe.name!r}")
        self.windowing = Windowing(input_steps, target_steps, stride, self.dt, statistics, keep_trajectories=tee is not None)
        self.counters = GeneratorCounters(next_member=start_member)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._feeder: threading.Thread | None = None
        self._executor = None
        self._tee_group = None

    # ----- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Generator:
        """Starts the workers and the feeder thread; returns self."""
        if self._feeder is not None:
            raise RuntimeError("the generator has already been started")
        if self.tee is not None:
            self._tee_group = self._create_tee()
        self._executor = self._make_executor()
        self._feeder = threading.Thread(target=self._feed, name="pdekit-generator-feeder", daemon=True)
        self._feeder.start()
        return self

    def close(self) -> None:
        """Stops producing, cancels what is pending and waits for every thread and process it started."""
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join()
        self._shutdown_executor()

    def __enter__(self) -> Generator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._feeder is not None and self._feeder.is_alive()

    def _make_executor(self):
        if self.client is not None:
            return self.client
        if self.workers:
            # spawn, not fork: forking a process that runs torch threads can deadlock the child. The
            # initializer makes each worker exit when this process dies, even by SIGKILL.
            return concurrent.futures.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=solver_worker_initializer,
                initargs=(os.getpid(),),
            )
        return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pdekit-generator-solver")

    def _shutdown_executor(self) -> None:
        if self._executor is not None and self._executor is not self.client:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    # ----- the feeder thread -------------------------------------------------------------------
    def batches(self) -> Iterator[list[int]]:
        """Yields the member batches still to solve: whole batches of each block's offline partition by ``recipe.batch_size``.

        Batches never straddle blocks (a block of ``M`` members is partitioned as ``pdekit generate``
        partitions the store), and a batch is always solved whole, even when some of its members are
        excluded, were used before ``start_member`` or lie past ``members``: those are dropped after
        solving (``dropped``). The batch's composition sets the bits of every member (batched
        transforms, and the CFL step chosen over the batch), so, with the same device and thread
        count, the stream's members are the offline store's. A batch none of whose members is
        wanted is skipped.
        """
        size, per_block = self.recipe.batch_size, self.recipe.members
        block = self.start_member // per_block
        while True:
            for low in range(0, per_block, size):
                batch = list(range(block * per_block + low, block * per_block + min(low + size, per_block)))
                if self.members is not None and batch[0] >= self.members:
                    return
                if any(m not in self.dropped(batch) for m in batch):
                    yield batch
            block += 1

    def dropped(self, batch: list[int]) -> frozenset:
        """Returns the members of ``batch`` solved but not delivered: excluded, before ``start_member``, or past ``members``."""
        return frozenset(m for m in batch if m in self.exclude or m < self.start_member or (self.members is not None and m >= self.members))

    def _submit(self, batch: list[int]):
        if self.client is not None:
            return self.client.submit(produce, self.solve, self.recipe, batch, "cpu", self.windowing, self.dropped(batch), pure=False)
        return self._executor.submit(
            produce, self.solve, self.recipe, batch, "cpu" if self.workers else self.device, self.windowing, self.dropped(batch)
        )

    def _wait_first(self, futures, timeout: float):
        if self.client is not None:
            import distributed

            try:
                distributed.wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
            except distributed.TimeoutError:
                pass
            return [f for f in futures if f.done()]
        done, _ = concurrent.futures.wait(list(futures), timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def _feed(self) -> None:
        pending: dict = {}  # future -> (batch, attempt)
        batches = self.batches()
        exhausted = False
        submitted_until = self.start_member
        try:
            while not self._stop.is_set():
                while not exhausted and len(pending) < self.in_flight:
                    batch = next(batches, None)
                    if batch is None:
                        exhausted = True
                        break
                    pending[self._submit(batch)] = (batch, 0)
                    submitted_until = batch[-1] + 1
                if not pending:
                    break  # every member of a finite stream is in the reservoir
                for future in self._wait_first(pending, timeout=0.2):
                    batch, attempt = pending.pop(future)
                    try:
                        produced = future.result()
                    except Exception as error:  # noqa: BLE001 - a producer failed: count it, solve the batch again
                        self.counters.task_failures += 1
                        if attempt >= self.retries:
                            raise RuntimeError(
                                f"members {batch[0]}..{batch[-1]} failed {attempt + 1} times; last error: {error!r}"
                            ) from error
                        log.warning("members %d..%d failed (%r); submitting them again", batch[0], batch[-1], error)
                        broken = isinstance(error, BrokenProcessPool)
                        if broken:
                            pending = self._replace_pool(pending)
                        pending[self._submit(batch)] = (batch, attempt + 1)
                        if broken:
                            break  # the other finished futures belonged to the dead pool and were resubmitted
                        continue
                    self._deliver(produced)
                    # a resumed run restarts here: no member before it is missing (some after it may repeat)
                    self.counters.next_member = min([b[0] for b, _ in pending.values()] + [submitted_until])
            if exhausted and not pending:
                self.reservoir.close()
        except ReservoirClosed:
            pass  # the trainer is done
        except BaseException as error:  # noqa: BLE001 - hand it to the trainer, which would otherwise wait forever
            self.error = error
            self.reservoir.close()
        finally:
            for future in pending:
                future.cancel()

    def _replace_pool(self, pending: dict) -> dict:
        """A worker process died: every pending task died with it. Starts a new pool and resubmits them."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._make_executor()
        return {self._submit(batch): (batch, attempt) for batch, attempt in pending.values()}

    def _deliver(self, produced: Produced) -> None:
        """Writes a finished batch to the tee store and puts its samples, waiting while the reservoir is full: backpressure."""
        self.counters.blown_up += len(produced.failed)
        if not produced.members:
            return
        if self._tee_group is not None:
            for member, trajectory in zip(produced.members, produced.trajectories.cpu().numpy(), strict=True):
                write_member(self._tee_group, member, trajectory)
        samples = produced.samples
        handled = 0
        while handled < len(samples[0]):
            if self._stop.is_set():
                return
            handled += self.reservoir.put(*(t[handled:] for t in samples), timeout=0.2)
        self.counters.members += len(produced.members)
        self.counters.windows += len(samples[0])

    def _create_tee(self):
        """Opens the tee store (a resumed run) or creates it with the stream's parameters and seeds of members ``0 .. members - 1``."""
        recipe = self.recipe.with_overrides(members=self.members)
        try:
            group = open_store(self.tee, mode="r+")
        except StoreError:
            group = None
        if group is not None:
            if group["member"].shape[0] != self.members:
                raise StoreError(f"{self.tee}: holds {group['member'].shape[0]} members; this stream has {self.members}")
            return group
        parameters, seeds = member_parameters(self.recipe, range(self.members))
        return create_store(self.tee, Layout.of_recipe(recipe), parameters, seeds)
