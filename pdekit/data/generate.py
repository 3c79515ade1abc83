"""Ensemble generation: parameter sampling, batched solves, crash-safe writes, resume, dask.distributed.

Members are split into fixed batches ``[0, b), [b, 2b), ...``. A batch always runs with the same
members (less those already known to blow up), so a member's trajectory does not depend on
whether the run was interrupted, resumed, or spread over a cluster: the CFL-controlled step is
chosen over the batch, and the batch is the same in every case.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import qmc

import pdekit
from pdekit.data.lock import DirectoryLock
from pdekit.data.recipes import Recipe, Uniform, build_solver, differing_settings, record
from pdekit.data.schema import json_attribute
from pdekit.data.store import (
    Layout,
    create_store,
    local_path,
    mark_failed,
    member_status,
    open_store,
    store_exists,
    values,
    write_member,
)
from pdekit.devices import Device
from pdekit.progress import progress_bar
from pdekit.seeds import derived_seed
from pdekit.solvers import BlowUpError

log = logging.getLogger(__name__)


def sample_parameters(recipe: Recipe) -> dict[str, np.ndarray]:
    """Returns every member's parameters, drawn as ``recipe.sampling`` says.

    Ranged parameters are drawn jointly from ``[0, 1)^d`` (pseudo-random, Latin hypercube or
    scrambled Sobol points from ``scipy.stats.qmc``, seeded by ``recipe.seed``) and mapped into their
    ranges; constants are repeated.

    Args:
        recipe: the ensemble; its ``parameters``, ``sampling``, ``members`` and ``seed`` are used.

    Returns:
        Parameter name -> values ``[members]`` (float64), for every name in ``recipe.parameter_names``.
    """
    ranged = recipe.ranged_parameters
    unit = np.zeros((recipe.members, 0))
    if ranged:
        if recipe.sampling == "random":
            unit = np.random.default_rng(recipe.seed).random((recipe.members, len(ranged)))
        elif recipe.sampling == "latin_hypercube":
            unit = qmc.LatinHypercube(d=len(ranged), seed=recipe.seed).random(recipe.members)
        else:
            with warnings.catch_warnings():  # Sobol prefers powers of two; any count is still valid
                warnings.simplefilter("ignore", UserWarning)
                unit = qmc.Sobol(d=len(ranged), scramble=True, seed=recipe.seed).random(recipe.members)
    parameters = {}
    for name in recipe.parameter_names:
        value = recipe.parameters[name]
        if isinstance(value, Uniform):
            column = unit[:, ranged.index(name)]
            parameters[name] = np.array([value.transform(u) for u in column])
        else:
            parameters[name] = np.full(recipe.members, float(value))
    return parameters


def member_seeds(recipe: Recipe) -> np.ndarray:
    """Returns the seed of every member's initial condition: a function of ``recipe.seed`` and its index alone.

    Args:
        recipe: the ensemble; its ``seed`` and ``members`` are used.

    Returns:
        ``[members]`` int64 seeds, member ``i``'s being ``pdekit.seeds.derived_seed(recipe.seed, i, bits=62)``.
    """
    return np.array([derived_seed(recipe.seed, i, bits=62) for i in range(recipe.members)], dtype=np.int64)


def member_batches(recipe: Recipe) -> list[list[int]]:
    """Returns the fixed partition of members into solver batches."""
    return [list(range(i, min(i + recipe.batch_size, recipe.members))) for i in range(0, recipe.members, recipe.batch_size)]


@dataclass
class SolvedBatch:
    """What ``solve_batch`` returns: the trajectories of the members that stayed finite, and those that blew up.

    ``solved`` and ``failed`` hold positions in the batch (``0 .. n - 1``), not member numbers;
    ``trajectories [len(solved), time, C, *stored_space]`` (the solver's dtype, on its device) are the
    recipe's fields on its stored grid at ``t = 0`` and ``recipe.times``, as a store records them;
    ``failed`` pairs a position with the output time at which it was found non-finite.
    """

    solved: list[int]
    trajectories: torch.Tensor
    failed: list[tuple[int, float]] = field(default_factory=list)


def solve_batch(
    recipe: Recipe,
    parameters: Mapping[str, np.ndarray],
    seeds: Sequence[int] | np.ndarray,
    device: Device | None = None,
    *,
    on_output: Callable[[float], None] | None = None,
) -> SolvedBatch:
    """Solves one batch of members together; a member that blows up is dropped and the rest are solved again without it.

    The one place where a batch is solved, for ``pdekit generate`` and the online generator alike,
    so a member comes out with the same bits from either: the batch's composition (less the members
    that blew up) decides the CFL-controlled step and the batched transforms.

    Args:
        recipe: what to solve (``build_solver``), from ``t = 0`` to ``recipe.times[-1]`` with step ``recipe.dt``.
        parameters: parameter name -> per-member values ``[n]`` (float64), for ``recipe.parameter_names``.
        seeds: ``[n]`` initial-condition seeds, one per member.
        device: the solver's device; None: ``pdekit.devices.default_device()``.
        on_output: called with each output time as the solve reaches it (again from the start after a
            blow-up); for progress reports.

    Returns:
        The stored trajectories of the members that stayed finite, and the positions and times of
        those that did not (an empty ``trajectories`` when none is left).
    """
    alive = list(range(len(seeds)))
    failed: list[tuple[int, float]] = []
    while alive:
        solver = build_solver(recipe, {name: torch.as_tensor(parameters[name][alive]) for name in recipe.parameter_names}, device=device)
        u0 = solver.initial_condition(len(alive), seeds=[int(seeds[i]) for i in alive])
        try:
            # only when asked: a solver of another kind need not take the keyword
            progress = {} if on_output is None else {"on_output": on_output}
            trajectory = solver.solve(u0, (0.0, *recipe.times), dt=recipe.dt, **progress)
        except BlowUpError as error:
            blown = set(error.members)
            failed += [(alive[i], error.time) for i in error.members]
            alive = [position for i, position in enumerate(alive) if i not in blown]
            continue
        return SolvedBatch(alive, record(recipe, trajectory), failed)
    return SolvedBatch([], torch.empty(0), failed)


@dataclass
class BatchResult:
    """What ``run_batch`` did: members of batch ``batch`` written as completed, marked failed, and the seconds it took."""

    batch: int
    completed: int
    failed: int
    seconds: float = 0.0


def run_batch(
    recipe: Recipe, store, batch: int, device: Device | None = None, on_output: Callable[[float], None] | None = None
) -> BatchResult:
    """Solves one batch of members and writes it; members already completed or failed are skipped.

    A member that blows up is marked failed with its time and the rest of the batch is solved again
    without it (``solve_batch``). Safe to run concurrently with other batches of the same store.
    ``on_output`` is ``solve_batch``'s.
    """
    started = time.perf_counter()
    group = open_store(store, mode="r+")
    completed, failed = member_status(group)
    members = [m for m in member_batches(recipe)[batch] if not failed[m]]
    if all(completed[m] for m in members):
        return BatchResult(batch, 0, 0)
    seeds = values(group, "seed")[members]
    parameters = {name: values(group, name)[members] for name in recipe.parameter_names}
    solved = solve_batch(recipe, parameters, seeds, device, on_output=on_output)
    for position, failure_time in solved.failed:
        mark_failed(group, members[position], failure_time)
    stored = solved.trajectories.cpu().numpy()
    written = 0
    for row, position in enumerate(solved.solved):
        if not completed[members[position]]:
            write_member(group, members[position], stored[row])
            written += 1
    return BatchResult(batch, written, len(solved.failed), time.perf_counter() - started)


@dataclass
class GenerationSummary:
    """What ``generate`` leaves: of the store's ``members``, how many are completed and how many failed (blew up)."""

    store: str
    members: int
    completed: int
    failed: int

    def __str__(self) -> str:
        return f"{self.store}: {self.completed} of {self.members} members completed, {self.failed} failed"


def _same_recipe(group, recipe: Recipe, store) -> None:
    stored = json_attribute(group.attrs, "recipe", {})
    differences = differing_settings(stored, recipe)
    if differences:
        wanted = recipe.to_attrs()
        details = ", ".join(f"{k}: store has {stored.get(k)!r}, asked {wanted[k]!r}" for k in differences)
        raise ValueError(f"{store}: cannot resume with a different recipe ({details})")
    written_by = group.attrs.get("pdekit_version")
    if written_by != pdekit.__version__:
        # Solver numerics may change between versions (the last bits of a step, 5e-8 in float32 in 0.2):
        # the members solved now are correct but not bit-identical to those an earlier version wrote.
        warnings.warn(
            f"{store} was started by pdekit {written_by}; this is pdekit {pdekit.__version__}: the members it solves now may differ "
            "from an uninterrupted run of either version in their last bits",
            stacklevel=3,
        )


def check_device(device: Device | None, *, here: bool = True) -> None:
    """ValueError unless ``device`` (None: the default) names a torch device, one this process can use when ``here``."""
    if device is None:
        return
    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {device!r} is not a torch device; use e.g. cpu, cuda, cuda:1 or mps") from None
    if here:
        try:
            torch.empty(0, device=device)
        except Exception as error:  # noqa: BLE001 - CPU-only builds raise AssertionError, a missing GPU RuntimeError
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"device {device!r} is not available here ({reason})") from None


def _finished(recipe: Recipe, result: BatchResult, bar) -> None:
    """Counts a finished batch on the progress bar and in the log."""
    bar.update(result.completed + result.failed)
    log.info(
        "%s: batch %d: %d members solved, %d failed, in %.1f s", recipe.name, result.batch, result.completed, result.failed, result.seconds
    )


def generate(
    recipe: Recipe, store, *, resume: bool = False, client=None, device: Device | None = None, progress: bool = True
) -> GenerationSummary:
    """Generates ``recipe``'s ensemble into ``store`` and returns a summary.

    With ``resume``, an existing store of the same recipe is finished: only members that are neither
    completed nor failed are simulated, and each comes out bit-identical to an uninterrupted run.
    With a ``distributed.Client``, every batch is a task on the cluster that writes its own shards.

    Killed at any moment, it leaves nothing that blocks running it again: the store's creation is
    all or nothing (``create_store``), and a member counts only once it is written. A local store
    (a path or ``file://`` URL) has one writer at a time: ``generate`` holds an exclusive lock on
    ``<store>.lock`` beside it, a second one raises ``LockedError`` at once, and the operating
    system releases the lock however the holder ends. Stores at other URLs are not locked: keep
    their writers apart yourself. Each finished batch is logged (``logging``, level INFO) with its
    members solved and failed and its seconds.

    Args:
        recipe: the ensemble to simulate.
        store: a local path or any fsspec URL (``file://``, ``s3://``, ...).
        resume: finish an existing store of the same recipe instead of refusing it.
        client: a ``distributed.Client`` whose workers solve the batches; None: this process.
        device: the solvers' device; None: CUDA when present, else the CPU. It is checked before
            anything is written (on the workers' side with a client, so only its spelling here).
        progress: show a progress bar of members done, with the simulated time the current batch
            has reached (without a client); it also stays off when standard error is not a terminal.

    Returns:
        The store's members completed and failed.

    Raises:
        ValueError: ``device`` is not a torch device, or not one this process can use; or the
            existing store was made from a different recipe.
        FileExistsError: ``store`` already holds an ensemble (without ``resume``) or other files.
        LockedError: another process is generating into the same local store.
        StoreError: the existing store has another schema version.
    """
    check_device(device, here=client is None)
    target = local_path(store) or store  # a file:// URL is written as its path, with Zarr's local store
    with DirectoryLock(target, "generate", beside=True):
        if store_exists(target):
            group = open_store(target, mode="r+")  # StoreError for another schema version, saying what to do
            if not resume:
                raise FileExistsError(f"{store} already holds an ensemble; pass resume=True (pdekit generate --resume) to finish it")
            _same_recipe(group, recipe, store)
        else:
            group = create_store(target, Layout.of_recipe(recipe), sample_parameters(recipe), member_seeds(recipe))
        completed, failed = member_status(group)
        pending = [b for b, members in enumerate(member_batches(recipe)) if any(not (completed[m] or failed[m]) for m in members)]

        bar = progress_bar(
            total=recipe.members, initial=int(completed.sum() + failed.sum()), unit="member", desc=recipe.name, enabled=progress
        )
        with bar:
            if client is None:
                final = recipe.times[-1]
                # the simulated time reached within the batch, so a long batch shows that it moves
                on_output = None if bar.disable else lambda t: bar.set_postfix_str(f"t={t:g}/{final:g}")
                for b in pending:
                    _finished(recipe, run_batch(recipe, target, b, device, on_output), bar)
            else:
                from distributed import as_completed

                futures = [client.submit(run_batch, recipe, target, b, device, pure=False, retries=2) for b in pending]
                for future in as_completed(futures):
                    _finished(recipe, future.result(), bar)
        completed, failed = member_status(group)
    return GenerationSummary(str(store), recipe.members, int(completed.sum()), int(failed.sum()))
