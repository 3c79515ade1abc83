"""Ensemble generation: parameter sampling, batched solves, crash-safe writes, resume, dask.distributed.

Members are split into fixed batches ``[0, b), [b, 2b), ...``. A batch always runs with the same
members (less those already known to blow up), so a member's trajectory does not depend on
whether the run was interrupted, resumed, or spread over a cluster: the CFL-controlled step is
chosen over the batch, and the batch is the same in every case.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import qmc
from tqdm.auto import tqdm

import pdekit
from pdekit.data.lock import DirectoryLock
from pdekit.data.recipes import Recipe, Uniform, build_solver, differing_settings, record
from pdekit.data.schema import json_attribute
from pdekit.data.store import Layout, create_store, local_path, mark_failed, member_status, open_store, store_exists, write_member
from pdekit.solvers import BlowUpError


def sample_parameters(recipe: Recipe) -> dict[str, np.ndarray]:
    """Returns every member's parameters, name -> ``[members]``, drawn as ``recipe.sampling`` says.

    Ranged parameters are drawn jointly from ``[0, 1)^d`` (pseudo-random, Latin hypercube or
    scrambled Sobol points from ``scipy.stats.qmc``, seeded by ``recipe.seed``) and mapped into their
    ranges; constants are repeated.
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
    """Returns the seed of every member's initial condition: a function of ``recipe.seed`` and its index alone."""
    return np.array(
        [int(np.random.SeedSequence([recipe.seed, i]).generate_state(1, np.uint64)[0] >> np.uint64(2)) for i in range(recipe.members)],
        dtype=np.int64,
    )


def member_batches(recipe: Recipe) -> list[list[int]]:
    """Returns the fixed partition of members into solver batches."""
    return [list(range(i, min(i + recipe.batch_size, recipe.members))) for i in range(0, recipe.members, recipe.batch_size)]


@dataclass
class BatchResult:
    batch: int
    completed: int
    failed: int


def run_batch(recipe: Recipe, store, batch: int, device=None) -> BatchResult:
    """Solves one batch of members and writes it; members already completed or failed are skipped.

    A member that blows up is marked failed with its time and the rest of the batch is solved again
    without it. Safe to run concurrently with other batches of the same store.
    """
    group = open_store(store, mode="r+")
    completed, failed = member_status(group)
    members = [m for m in member_batches(recipe)[batch] if not failed[m]]
    if all(completed[m] for m in members):
        return BatchResult(batch, 0, 0)
    names = recipe.parameter_names
    seeds = group["seed"][:]
    values = {name: group[name][:] for name in names}
    newly_failed = 0
    while members:
        parameters = {name: torch.as_tensor(values[name][members]) for name in names}
        solver = build_solver(recipe, parameters, device=device)
        u0 = solver.initial_condition(len(members), seeds=[int(seeds[m]) for m in members])
        try:
            trajectory = solver.solve(u0, (0.0, *recipe.times), dt=recipe.dt)
        except BlowUpError as error:
            for i in error.members:
                mark_failed(group, members[i], error.time)
            newly_failed += len(error.members)
            members = [m for i, m in enumerate(members) if i not in set(error.members)]
            continue
        stored = record(recipe, trajectory).cpu().numpy()
        written = 0
        for i, m in enumerate(members):
            if not completed[m]:
                write_member(group, m, stored[i])
                written += 1
        return BatchResult(batch, written, newly_failed)
    return BatchResult(batch, 0, newly_failed)


@dataclass
class GenerationSummary:
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


def check_device(device, *, here: bool = True) -> None:
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


def generate(recipe: Recipe, store, *, resume: bool = False, client=None, device=None, progress: bool = True) -> GenerationSummary:
    """Generates ``recipe``'s ensemble into ``store`` (a path or any fsspec URL) and returns a summary.

    With ``resume``, an existing store of the same recipe is finished: only members that are neither
    completed nor failed are simulated, and each comes out bit-identical to an uninterrupted run.
    With a ``distributed.Client``, every batch is a task on the cluster that writes its own shards.

    Killed at any moment, it leaves nothing that blocks running it again: the store's creation is
    all or nothing (``create_store``), and a member counts only once it is written. A local store
    (a path or ``file://`` URL) has one writer at a time: ``generate`` holds an exclusive lock on
    ``<store>.lock`` beside it, a second one raises ``LockedError`` at once, and the operating
    system releases the lock however the holder ends. Stores at other URLs are not locked: keep
    their writers apart yourself. ``device`` is checked before anything is written (on the
    workers' side with a client, so only its spelling here).
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

        bar = tqdm(total=recipe.members, initial=int(completed.sum() + failed.sum()), unit="member", desc=recipe.name, disable=not progress)
        if client is None:
            for b in pending:
                result = run_batch(recipe, target, b, device)
                bar.update(result.completed + result.failed)
        else:
            from distributed import as_completed

            futures = [client.submit(run_batch, recipe, target, b, device, pure=False, retries=2) for b in pending]
            for future in as_completed(futures):
                result = future.result()
                bar.update(result.completed + result.failed)
        bar.close()
        completed, failed = member_status(group)
    return GenerationSummary(str(store), recipe.members, int(completed.sum()), int(failed.sum()))
