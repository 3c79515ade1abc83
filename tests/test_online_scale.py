"""Online training at scale: reservoir state across restarts, the drain at the end of a stream, disjoint shares, DDP ranks in lockstep."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest
import torch

from pdekit.online import Generator, Reservoir, ReservoirClosed
from pdekit.online.stream import ReservoirBatches
from pdekit.training import load_checkpoint
from pdekit.training.checkpoint import DATA_STATE, data_state_files, data_state_path

sys.path.insert(0, os.path.dirname(__file__))
from test_online import collect, ids, tiny_heat  # noqa: E402


def saved_and_loaded(reservoir: Reservoir, path) -> Reservoir:
    torch.save(reservoir.state_dict(), path)
    again = Reservoir(reservoir.capacity, reservoir.policy, min_seen=reservoir.min_seen, seed=12345)  # another seed: the state's wins
    again.load_state_dict(torch.load(path, weights_only=True))
    return again


def untimed(counters):
    return dataclasses.replace(counters, waiting_seconds=0.0)


# ----- the reservoir's state ----------------------------------------------------------------------
@pytest.mark.parametrize("policy, min_seen", [("fifo", 0), ("firo", 0), ("reservoir", 0), ("reservoir", 1)])
def test_a_restored_reservoir_holds_the_same_samples_counters_and_draws_the_same_batches(tmp_path, policy, min_seen):
    reservoir = Reservoir(16, policy, min_seen=min_seen, watermark=4, seed=3)
    reservoir.put(ids(12), ids(12) * 10, position=(40, 0))
    reservoir.sample(5)
    reservoir.put(ids(4, start=12), ids(4, start=12) * 10, timeout=0.1, position=(40, 12))
    restored = saved_and_loaded(reservoir, tmp_path / "reservoir.pt")
    assert restored.position == reservoir.position == (40, 12 + min(4, reservoir.counters.offered - 12))
    assert restored.counters == reservoir.counters and np.array_equal(restored.seen_counts(), reservoir.seen_counts())
    for _ in range(2):  # the next draws, and what the policy does with the next puts, are the same
        assert all(torch.equal(a, b) for a, b in zip(restored.sample(3), reservoir.sample(3), strict=True))
        assert restored.put(ids(2, start=100), ids(2, start=100), timeout=0.05) == reservoir.put(
            ids(2, start=100), ids(2, start=100), timeout=0.05
        )
    assert untimed(restored.counters) == untimed(reservoir.counters)


def test_a_reservoir_resumes_only_with_its_own_settings(tmp_path):
    reservoir = Reservoir(8, "fifo", watermark=1)
    torch.save(reservoir.state_dict(), tmp_path / "r.pt")
    with pytest.raises(ValueError, match="a reservoir resumes only with its own settings"):
        Reservoir(16, "fifo").load_state_dict(torch.load(tmp_path / "r.pt", weights_only=True))


# ----- the end of a stream ------------------------------------------------------------------------
def test_a_closed_reservoir_drains_every_held_sample_exactly_once_more_then_ends():
    reservoir = Reservoir(10, "reservoir", watermark=1, seed=0)
    reservoir.put(ids(10))
    for _ in range(3):
        reservoir.sample(4)  # drawn with replacement while the stream runs
    reservoir.close()
    batches = []
    while True:
        try:
            batches.append(reservoir.sample(4)[0][:, 0])
        except ReservoirClosed:
            break
    assert [len(b) for b in batches] == [4, 4, 2]  # the last batch holds what is left
    assert sorted(torch.cat(batches).tolist()) == list(range(10)) and len(reservoir) == 0  # each sample once, none repeated


@pytest.mark.parametrize("policy, min_seen", [("fifo", 0), ("reservoir", 1)])
def test_at_the_end_of_a_finite_stream_every_admitted_window_is_trained_on_and_the_epochs_stop(policy, min_seen):
    reservoir = Reservoir(24, policy, min_seen=min_seen, watermark=4, seed=0)
    with Generator(tiny_heat(members=8, batch_size=2), reservoir, members=8, workers=0, device="cpu") as generator:
        batches = ReservoirBatches(reservoir, 5, steps=7, generator=generator)
        drawn, epochs = [], 0
        while not batches.exhausted:
            drawn += [params[:, 0] for _, _, _, params in batches]
            epochs += 1
    windows = torch.cat(drawn)
    assert batches.exhausted and len(reservoir) == 0 and reservoir.counters.admitted == 8 * 6
    # every one of the 48 windows (6 per member, told apart here by member) was drawn; fifo: exactly once
    members, counts = torch.unique(windows, return_counts=True)
    assert len(members) == 8 and (counts >= 6).all()
    assert reservoir.counters.unique_drawn == reservoir.counters.admitted
    if policy == "fifo":
        assert len(windows) == 48 and (counts == 6).all()
    assert batches.summary()["epoch_cut"] and batches.summary()["samples_left"] == 0


# ----- shares and positions -----------------------------------------------------------------------
def stream_windows(**generator) -> torch.Tensor:
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(tiny_heat(members=8, batch_size=2), reservoir, members=12, workers=0, device="cpu", **generator):
        inputs, *_ = collect(reservoir)
    return inputs


def test_rank_shares_are_disjoint_and_together_the_whole_stream():
    whole = stream_windows()
    shares = [stream_windows(share=(rank, 3)) for rank in range(3)]
    assert sum(len(s) for s in shares) == len(whole) == 12 * 6
    # batch j (2 members, 12 windows) goes to rank j % 3: rank 0 holds batches 0 and 3, in stream order
    torch.testing.assert_close(shares[0], torch.cat([whole[0:12], whole[36:48]]), rtol=0, atol=0)
    torch.testing.assert_close(shares[1], torch.cat([whole[12:24], whole[48:60]]), rtol=0, atol=0)
    torch.testing.assert_close(shares[2], torch.cat([whole[24:36], whole[60:72]]), rtol=0, atol=0)


def test_a_stream_resumed_at_a_reservoir_position_continues_with_the_next_window():
    whole = stream_windows()
    resumed = stream_windows(resume_at=(4, 5))  # batch of members 4 and 5, whose first 5 windows were delivered
    torch.testing.assert_close(resumed, whole[24 + 5 :], rtol=0, atol=0)


def test_data_state_files_are_read_back_from_the_names_data_state_path_gives(tmp_path):
    for epoch, rank in [(12, 1), (3, 0), (12, 0)]:
        data_state_path(tmp_path, epoch, rank).parent.mkdir(exist_ok=True)
        data_state_path(tmp_path, epoch, rank).touch()
    (tmp_path / DATA_STATE / ".epoch-000013-rank-0.pt.x1y2.tmp").touch()  # a torn write is not a state
    assert [(e, r) for e, r, _ in data_state_files(tmp_path)] == [(3, 0), (12, 0), (12, 1)]
    assert data_state_files(tmp_path)[0][2] == data_state_path(tmp_path, 3, 0)


# ----- DDP: two gloo processes --------------------------------------------------------------------
RUN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from test_online import online_config, tiny_heat
    from pdekit.data import RECIPES
    from pdekit.runs.online import train_online
    RECIPES["tiny_heat"] = lambda: tiny_heat(members=8, batch_size=2)
    if __name__ == "__main__":  # the solver workers are spawned: they import this file again
        settings = json.loads(sys.argv[3])
        config = online_config(**settings.pop("online", {})).with_overrides(**settings)
        train_online(config, sys.argv[2], resume=len(sys.argv) > 4)
    """
)


def torchrun(tmp_path, run, settings: dict, *, resume: bool = False, **popen) -> subprocess.Popen:
    import json

    script = tmp_path / "online.py"
    script.write_text(RUN_SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    command += [os.path.dirname(__file__), str(run), json.dumps(settings)] + (["resume"] if resume else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, **popen)


def finished(process: subprocess.Popen, timeout: float = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-6000:]
    return output


def records(run) -> list[dict]:
    return load_checkpoint(run / "checkpoint.pt")["history"]


SETTINGS = {"online": {"workers": 1, "steps_per_epoch": 4, "capacity": 48, "watermark": 12}, "trainer": {"epochs": 3}}


@pytest.fixture
def dask_scheduler():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:  # its workers are threads of this test process; the ranks reach its scheduler over TCP
        yield cluster.scheduler_address


@pytest.mark.parametrize("producers", ["processes", "dask"])
def test_two_ranks_train_in_lockstep_on_disjoint_shares_and_a_finite_stream_ends_them_together(tmp_path, request, producers):
    run = tmp_path / "run"
    online = {**SETTINGS["online"], "policy": "fifo", "members": 16, "steps_per_epoch": 5}
    if producers == "dask":  # both ranks submit their shares to one cluster
        online = {**online, "workers": None, "scheduler": request.getfixturevalue("dask_scheduler")}
    finished(torchrun(tmp_path, run, {**SETTINGS, "online": online, "trainer": {"epochs": 50}}))
    history = records(run)
    last = history[-1]
    # 16 members, 6 windows each, in batches of 2 dealt alternately: 48 windows per rank, all admitted, none on both
    assert last["samples_admitted_per_rank"] == [48, 48] and last["members_solved_per_rank"] == [8, 8]
    # 12 batches of 4 per rank: epochs of 5, 5 and 2 steps, the last one cut on both ranks at the same step
    assert [r["epoch_steps"] for r in history] == [5, 5, 2] and last["epoch_cut"]
    assert last["unique_samples_drawn_per_rank"] == [48, 48] and last["samples_left_per_rank"] == [0, 0]
    states = [load_checkpoint(data_state_path(run, len(history), rank)) for rank in (0, 1)]
    assert [s["replicas"] for s in states] == [2, 2] and sorted(os.listdir(run / DATA_STATE)) == [
        f"epoch-{e:06d}-rank-{r}.pt" for e in (len(history) - 1, len(history)) for r in (0, 1)
    ]


def test_a_finite_stream_too_short_for_every_rank_is_refused_naming_the_option(tmp_path):
    # 2 members in solver batches of 2: one batch, so the second rank's share is empty
    process = torchrun(tmp_path, tmp_path / "run", {**SETTINGS, "online": {**SETTINGS["online"], "members": 2}})
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "online.members=2: the stream's solver batches of 2 members, dealt over 2 processes, leave 1 of them none" in output


def solver_workers(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        children = psutil.Process(process.pid).children(recursive=True)
        return [c for c in children if "--multiprocessing-fork" in " ".join(c.cmdline())]
    except psutil.NoSuchProcess:
        return []


def test_two_ranks_killed_by_sigkill_resume_with_the_reservoirs_and_counters_of_their_checkpoint(tmp_path):
    run = tmp_path / "run"
    process = torchrun(tmp_path, run, {**SETTINGS, "trainer": {"epochs": 200}})
    deadline = time.monotonic() + 240
    while not (run / "checkpoint.pt").exists() or load_checkpoint(run / "checkpoint.pt")["epoch"] < 3:
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read() if process.stdout else ""
        time.sleep(0.2)
    started = psutil.Process(process.pid).children(recursive=True)
    os.kill(process.pid, signal.SIGKILL)  # torchrun's agent alone: its ranks and their solver workers must end by themselves
    process.wait()
    assert not psutil.wait_procs(started, timeout=20)[1]  # nothing left running
    epoch = load_checkpoint(run / "checkpoint.pt")["epoch"]
    saved = [load_checkpoint(data_state_path(run, epoch, rank))["reservoir"] for rank in (0, 1)]
    assert all(s["counters"]["admitted"] > 0 for s in saved)
    finished(torchrun(tmp_path, run, {**SETTINGS, "trainer": {"epochs": epoch + 1}}, resume=True))
    resumed = records(run)[-1]
    # the resumed epoch went on from the checkpoint's reservoirs: every counter continued, none restarted
    for rank in (0, 1):
        # one epoch of 4 batches of 4 after the checkpoint: from the saved figures, not from zero (a refilled
        # reservoir would count at most 16); whether any of the 16 draws is a fresh window is timing
        drawn_before = saved[rank]["counters"]["unique_drawn"]
        assert drawn_before <= resumed["unique_samples_drawn_per_rank"][rank] <= drawn_before + 16
        assert resumed["samples_admitted_per_rank"][rank] >= saved[rank]["counters"]["admitted"]
    assert resumed["epoch"] == epoch


def test_a_producer_crash_on_one_rank_is_replaced_and_the_other_rank_trains_on(tmp_path):
    run = tmp_path / "run"
    process = torchrun(tmp_path, run, {**SETTINGS, "trainer": {"epochs": 60}})  # long enough to outlive the crash by far
    deadline = time.monotonic() + 240
    while len(workers := solver_workers(process)) < 2 or not (run / "checkpoint.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the crash"
        time.sleep(0.1)
    workers[0].kill()  # one rank's solver process dies mid-stream
    finished(process)
    last = records(run)[-1]
    assert last["epoch"] == 59 and sorted(last["task_failures_per_rank"]) == [0, 1]
