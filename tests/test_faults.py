"""Fault injection: `pdekit generate`, `train` and `online`, SIGKILLed as real processes at random (seeded) moments.

After every kill nothing is left running, and resuming finishes the job as if nothing had
happened: a generated store is bit-identical to an uninterrupted one, a run ends with the requested
epochs and a run directory whose files agree. Only the command line and public functions are used,
so the run directory may gain files without breaking these tests.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
import zarr

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pdekit.data import generate, validate
from pdekit.data.recipes import heat_2d
from pdekit.training import load_checkpoint

PDEKIT = [sys.executable, "-m", "pdekit"]
TAG = "PDEKIT_FAULT_TEST"  # set in a started command's environment, which every process it starts inherits
MEMBERS = 24
GENERATE = ["generate", "burgers_1d", "--members", str(MEMBERS), "--batch-size", "2", "--shape", "256", "--device", "cpu", "--no-progress"]
MODEL = ["--model", "fno", "--set", "model.width=8", "--set", "model.modes=4", "--no-progress"]
ONLINE = [
    "online",
    "--recipe",
    "heat_2d",
    *MODEL,
    "--batch-size",
    "4",
    "--capacity",
    "32",
    "--watermark",
    "8",
    "--steps-per-epoch",
    "3",
    "--validation-members",
    "2",
    "--workers",
    "1",
    "--set",
    "online.batch_size=2",
]


def start(arguments: list[str], tag: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*PDEKIT, *arguments], env={**os.environ, TAG: tag}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def tagged(tag: str) -> list[psutil.Process]:
    """Returns the live processes started by a command run with ``tag`` (found by their environment: they may have been reparented)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get(TAG) == tag:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def assert_nothing_left(tag: str, within: float = 15.0) -> None:
    deadline = time.time() + within
    while (left := tagged(tag)) and time.time() < deadline:
        time.sleep(0.1)
    try:
        assert not left, f"left running after the kill: {[' '.join(p.cmdline())[:120] for p in left]}"
    finally:
        for process in left:
            process.kill()


def kill_when(process: subprocess.Popen, ready, delay: float, tag: str) -> None:
    """SIGKILLs ``process`` (only it, as a crash would) ``delay`` seconds after ``ready()`` holds; then nothing it started may be left."""
    while not ready() and process.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert_nothing_left(tag)


def finish(arguments: list[str], tag: str) -> None:
    process = start(arguments, tag)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert_nothing_left(tag)


def completed(store: Path) -> int:
    try:
        return int(np.asarray(zarr.open_group(store, mode="r")["completed"][:]).sum())
    except Exception:  # noqa: BLE001 - not there yet
        return 0


def metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def epochs_logged(run: Path) -> int:
    return len(metrics(run))


def checked_run_directory(run: Path) -> int:
    """Returns the epochs the run directory says are done, after checking that its files agree (extra files are allowed)."""
    if not (run / "checkpoint.pt").exists():
        return 0
    state = load_checkpoint(run / "checkpoint.pt")
    done, logged = state["epoch"], metrics(run)
    # metrics.jsonl is written just before the checkpoint: a kill in between leaves one record more, which a resume drops
    assert done <= len(logged) <= done + 1
    assert [r["epoch"] for r in logged[:done]] == list(range(done)) == [r["epoch"] for r in state["history"]]
    assert [r["train_loss"] for r in logged[:done]] == [r["train_loss"] for r in state["history"]]
    assert (run / "config.toml").is_file()
    return done


def assert_finished(run: Path, epochs: int, before: list[dict]) -> None:
    """The run ended with ``epochs`` epochs in all its files and kept the records of the epochs done before it was killed."""
    assert checked_run_directory(run) == epochs and epochs_logged(run) == epochs
    assert tomllib.loads((run / "config.toml").read_text())["trainer"]["epochs"] == epochs
    assert metrics(run)[: len(before)] == before, "a resumed run continues its checkpoint; it does not start again"


# ----- generate ---------------------------------------------------------------------------------
def _generate_with_kills(tmp_path: Path, seed: int, kills: int) -> None:
    rng = random.Random(seed)
    tag = uuid.uuid4().hex
    reference, store = tmp_path / "reference.zarr", tmp_path / "killed.zarr"
    finish([*GENERATE, "--out", str(reference)], tag)  # a process like the killed ones: the same threads, the same floating point
    for kill in range(kills):
        done = completed(store)
        if done >= MEMBERS - 1:
            break  # too little left to kill it in
        process = start([*GENERATE, "--out", str(store), *(["--resume"] if kill else [])], tag)
        if rng.random() < 0.3:  # anywhere in start-up, the store's creation or the first batches
            kill_when(process, lambda: True, rng.uniform(0.0, 2.0), tag)
        else:  # after some more members, at a random point of a batch
            target = min(done + rng.randint(1, 4), MEMBERS - 1)
            kill_when(process, lambda target=target: completed(store) >= target, rng.uniform(0.0, 0.15), tag)
        if store.exists():
            assert validate(store).ok
    finish([*GENERATE, "--out", str(store), "--resume"], tag)
    expected, found = zarr.open_group(reference, mode="r"), zarr.open_group(store, mode="r")
    assert sorted(n for n, _ in expected.arrays()) == sorted(n for n, _ in found.arrays())
    for name, array in expected.arrays():
        np.testing.assert_array_equal(np.asarray(found[name][...]), np.asarray(array[...]), err_msg=name)
    assert validate(store).ok and completed(store) == MEMBERS
    assert not [p.name for p in tmp_path.iterdir() if ".creating-" in p.name]


def test_generate_killed_at_random_moments_resumes_to_the_uninterrupted_store(tmp_path):
    _generate_with_kills(tmp_path, seed=0, kills=2)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generate_killed_many_times_resumes_to_the_uninterrupted_store(tmp_path, seed):
    _generate_with_kills(tmp_path, seed=seed, kills=5)


# ----- train ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("faults") / "heat.zarr"
    generate(heat_2d().with_overrides(shape=(16, 16), members=8, batch_size=8), store, device="cpu", progress=False)
    return store


def _fit_with_kills(arguments: list[str], run: Path, epochs: int, seed: int, kills: int) -> None:
    """Starts ``arguments`` (a train or online command into ``run``), SIGKILLs it ``kills`` times at random moments, resumes it to the
    end."""
    rng = random.Random(seed)
    tag = uuid.uuid4().hex
    command = [*arguments, "--out", str(run), "--epochs", str(epochs)]
    before: list[dict] = []
    for kill in range(kills):
        logged = epochs_logged(run)
        if logged >= epochs - 1:
            break  # too little left to kill it in
        process = start([*command, *(["--resume"] if kill else [])], tag)
        if rng.random() < 0.3:  # start-up: config, data, statistics, workers, the first epoch
            kill_when(process, lambda: True, rng.uniform(0.0, 4.0), tag)
        else:  # at a random point of a later epoch
            target = rng.randint(logged + 1, epochs - 1)
            kill_when(process, lambda target=target: epochs_logged(run) >= target, rng.uniform(0.0, 0.3), tag)
        done = checked_run_directory(run)
        before = metrics(run)[:done]
    finish([*command, "--resume"], tag)
    assert_finished(run, epochs, before)


def test_train_killed_at_random_moments_resumes_to_its_requested_epochs(tmp_path, small_store):
    _fit_with_kills(["train", "--data", str(small_store), *MODEL, "--batch-size", "8"], tmp_path / "run", epochs=6, seed=0, kills=1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_train_killed_many_times_resumes_to_its_requested_epochs(tmp_path, small_store, seed):
    _fit_with_kills(["train", "--data", str(small_store), *MODEL, "--batch-size", "8"], tmp_path / "run", epochs=8, seed=seed, kills=5)


# ----- online -----------------------------------------------------------------------------------
def test_killed_online_run_leaves_no_solver_worker_or_resource_tracker_behind(tmp_path):
    tag = uuid.uuid4().hex
    process = start([*ONLINE, "--out", str(tmp_path / "run"), "--epochs", "100"], tag)
    parent = psutil.Process(process.pid)

    def worker_started() -> bool:
        try:
            return any("--multiprocessing-fork" in child.cmdline() for child in parent.children(recursive=True))
        except psutil.NoSuchProcess:
            return False

    kill_when(process, worker_started, 0.0, tag)
    assert process.returncode == -signal.SIGKILL, f"the run ended before its worker started: {process.stderr.read()}"


def test_online_killed_at_random_moments_resumes_and_leaves_no_process_behind(tmp_path):
    run = tmp_path / "run"
    _fit_with_kills(ONLINE, run, epochs=4, seed=0, kills=1)
    assert validate(run / "validation.zarr").ok


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_online_killed_many_times_resumes_and_leaves_no_process_behind(tmp_path, seed):
    run = tmp_path / "run"
    _fit_with_kills(ONLINE, run, epochs=6, seed=seed, kills=4)
    assert validate(run / "validation.zarr").ok
