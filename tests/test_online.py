import functools
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
import torch

from pdekit.data import LogUniform, Recipe, Windows, generate
from pdekit.online import Generator, Reservoir, ReservoirClosed, solve_members, stream_parameters_and_seeds


def ids(n, start=0):
    return torch.arange(start, start + n, dtype=torch.float32)[:, None]


def tiny_heat(**changes) -> Recipe:
    settings = dict(
        name="tiny_heat",
        pde="heat",
        shape=(16, 16),
        times=tuple(0.01 * i for i in range(1, 7)),
        dt=0.01,
        parameters={"diffusivity": LogUniform(1e-3, 1e-2)},
        members=8,
        batch_size=4,
    )
    return Recipe(**{**settings, **changes})


# ----- the reservoir's rules ----------------------------------------------------------------------
def test_fifo_returns_the_oldest_samples_and_uses_each_once():
    reservoir = Reservoir(8, "fifo", watermark=4)
    reservoir.put(ids(6))
    assert reservoir.sample(3)[0].ravel().tolist() == [0, 1, 2]
    assert reservoir.put(ids(10, start=10), timeout=0.05) == 5  # full at 8: the rest waits
    assert reservoir.sample(8)[0].ravel().tolist() == [3, 4, 5, 10, 11, 12, 13, 14]
    assert len(reservoir) == 0 and reservoir.counters.used_up == 11 and reservoir.counters.evicted == 0


def test_firo_draws_at_random_and_uses_each_sample_once():
    reservoir = Reservoir(100, "firo", watermark=100, seed=1)
    reservoir.put(ids(100))
    drawn = torch.cat([reservoir.sample(10)[0] for _ in range(10)]).ravel()
    assert sorted(drawn.tolist()) == list(range(100))
    assert drawn.tolist() != list(range(100))
    assert reservoir.counters.reuse == {1: 100}


def test_reservoir_policy_keeps_a_uniform_sample_of_everything_offered():
    # Algorithm R: after a stream of 400, each item is held with probability 20/400, early or late.
    kept = np.zeros(400)
    for seed in range(300):
        reservoir = Reservoir(20, "reservoir", watermark=20, seed=seed)
        for start in range(0, 400, 10):
            reservoir.put(ids(10, start=start))
        kept[reservoir.sample(20)[0].ravel().long().numpy()] += 1  # samples are kept: the draw shows the content
        assert len(reservoir) == 20
    held = np.unique(kept.nonzero()[0]).size
    first, last = kept[:200].sum() / 300, kept[200:].sum() / 300  # expected 10 of the 20 each
    assert abs(first - 10) < 1.0 and abs(last - 10) < 1.0 and held > 390


def test_min_seen_evicts_only_samples_drawn_often_enough_and_holds_producers_back():
    reservoir = Reservoir(4, "reservoir", min_seen=2, watermark=4, seed=0)
    reservoir.put(ids(4))
    assert reservoir.put(ids(1, start=10), timeout=0.05) == 0  # nothing drawn twice yet
    reservoir.sample(4)
    reservoir.sample(4)
    assert reservoir.put(ids(3, start=10), timeout=0.05) == 3  # three distinct victims from one scan
    assert reservoir.counters.evicted == 3 and reservoir.counters.reuse == {2: 3} and reservoir.counters.discarded == 0
    assert sorted(reservoir.seen_counts().tolist()) == [0, 0, 0, 2]
    assert sorted(reservoir.sample(4)[0].ravel().tolist())[-3:] == [10, 11, 12]


def test_sample_waits_for_the_watermark():
    reservoir = Reservoir(10, "reservoir", watermark=6)
    reservoir.put(ids(5))
    with pytest.raises(TimeoutError, match="watermark 6"):
        reservoir.sample(2, timeout=0.05)
    reservoir.put(ids(1, start=5))
    assert reservoir.started and reservoir.sample(2)[0].shape == (2, 1)


def test_concurrent_puts_lose_and_duplicate_nothing():
    reservoir = Reservoir(64, "fifo", watermark=8)
    producers = [
        threading.Thread(target=lambda p=p: [reservoir.put(ids(5, start=p * 1000 + i)) for i in range(0, 500, 5)]) for p in range(4)
    ]
    received = []

    def consume():
        while True:
            try:
                received.extend(reservoir.sample(8)[0].ravel().long().tolist())
            except ReservoirClosed:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join()
    reservoir.close()
    consumer.join(timeout=30)
    assert sorted(received) == [p * 1000 + i for p in range(4) for i in range(500)]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="policy"):
        Reservoir(4, "lifo")
    with pytest.raises(ValueError, match="min_seen"):
        Reservoir(4, "fifo", min_seen=1)
    reservoir = Reservoir(4)
    reservoir.put(ids(2))
    with pytest.raises(ValueError, match="holds"):
        reservoir.put(torch.zeros(2, 3))


# ----- the generator ------------------------------------------------------------------------------
def collect(reservoir: Reservoir) -> tuple[torch.Tensor, ...]:
    parts = []
    while True:
        try:
            parts.append(reservoir.sample(reservoir.capacity))
        except ReservoirClosed:
            return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def test_generator_yields_the_offline_windows_and_tees_the_offline_store(tmp_path):
    recipe = tiny_heat()
    generate(recipe, tmp_path / "offline.zarr", device="cpu", progress=False)
    offline = Windows(tmp_path / "offline.zarr", input_steps=2, target_steps=1)
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(
        recipe, reservoir, input_steps=2, target_steps=1, members=8, device="cpu", workers=0, tee=tmp_path / "tee.zarr"
    ) as generator:
        inputs, targets, dt, params = collect(reservoir)
    expected = offline.__getitems__(range(len(offline)))
    assert generator.counters.members == 8 and len(inputs) == len(offline)
    torch.testing.assert_close(inputs, torch.stack([e[0] for e in expected]), rtol=0, atol=0)
    torch.testing.assert_close(targets, torch.stack([e[1] for e in expected]), rtol=0, atol=0)
    torch.testing.assert_close(params, torch.stack([e[3] for e in expected]), rtol=0, atol=0)
    assert torch.all(dt == offline.dt)
    import zarr

    tee, store = zarr.open_group(tmp_path / "tee.zarr"), zarr.open_group(tmp_path / "offline.zarr")
    for name in ("temperature", "diffusivity", "seed", "completed"):
        np.testing.assert_array_equal(tee[name][:], store[name][:], err_msg=name)


def test_stream_continues_past_the_recipe_with_fresh_members_and_skips_excluded_ones():
    recipe = tiny_heat(members=4, batch_size=2)
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(recipe, reservoir, members=10, exclude=[1, 6], device="cpu", workers=0) as generator:
        _, _, _, params = collect(reservoir)
    per_member = 6
    diffusivities = params[::per_member, 0]
    assert generator.counters.members == 8 and len(diffusivities) == 8
    assert len(set(diffusivities.tolist())) == 8  # blocks 1 and 2 are new draws, not repeats of block 0


def fails_once(marker, recipe, members, device):
    """Solves like solve_members, but the first call anywhere (marked by a file) raises."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return solve_members(recipe, members, device)
    raise RuntimeError("injected producer failure")


def dies_once(marker, recipe, members, device):
    """Solves like solve_members, but the first call kills its worker process."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return solve_members(recipe, members, device)
    os._exit(3)


def test_producer_that_raises_is_resubmitted_and_training_continues(tmp_path):
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(
        tiny_heat(), reservoir, members=8, device="cpu", workers=0, solve=functools.partial(fails_once, tmp_path / "failed")
    ) as generator:
        inputs, *_ = collect(reservoir)
    assert generator.counters.task_failures == 1 and generator.counters.members == 8 and len(inputs) == 8 * 6
    assert generator.error is None


def test_dead_worker_process_is_replaced_and_its_batch_solved_again(tmp_path):
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(tiny_heat(), reservoir, members=8, workers=1, solve=functools.partial(dies_once, tmp_path / "died")) as generator:
        inputs, *_ = collect(reservoir)
    assert generator.counters.task_failures >= 1 and generator.counters.members == 8 and len(inputs) == 8 * 6
    assert not multiprocessing.active_children()


def test_a_generator_for_a_closed_reservoir_solves_nothing():
    # a finished stream, resumed: the reservoir came back closed, so no worker starts and no task runs
    def never(recipe, members, device):
        raise AssertionError("solved a member for a closed reservoir")

    reservoir = Reservoir(100, "fifo", watermark=1)
    reservoir.close()
    with Generator(tiny_heat(), reservoir, members=8, workers=1, solve=never) as generator:
        assert not generator.running and not multiprocessing.active_children()
    assert generator.error is None and generator.counters.members == 0


def test_a_producer_failing_every_time_stops_training_with_its_error():
    def broken(recipe, members, device):
        raise ValueError("solver misconfigured")

    reservoir = Reservoir(100, "reservoir", watermark=1)
    with Generator(tiny_heat(), reservoir, members=8, retries=1, workers=0, solve=broken) as generator:
        with pytest.raises(ReservoirClosed):
            reservoir.sample(1, timeout=10)
    assert "solver misconfigured" in repr(generator.error)


def slow_or_failing(marker, recipe, members, device):
    """Member 0's batch is slow and the first other batch fails once: the stream must go on around both."""
    if 0 in members:
        time.sleep(2.0)
    elif not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("injected dask task failure")
    return solve_members(recipe, members, device)


def test_dask_producers_deliver_in_stream_order_though_the_first_batch_is_slow_and_failed_tasks_are_resubmitted(tmp_path):
    distributed = pytest.importorskip("distributed")
    recipe = tiny_heat(members=12, batch_size=2)
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        with Generator(
            recipe, reservoir, members=12, client=client, solve=functools.partial(slow_or_failing, str(tmp_path / "failed"))
        ) as generator:
            _, _, _, params = collect(reservoir)
    assert generator.counters.task_failures == 1 and generator.counters.members == 12
    arrival = params[::6, 0]  # one diffusivity per member, in the order members reached the reservoir
    in_stream_order = stream_parameters_and_seeds(recipe, range(12))[0]["diffusivity"]
    np.testing.assert_allclose(arrival.numpy(), in_stream_order, rtol=1e-6)  # the slow first batch was waited for


def test_close_leaves_no_thread_or_process_behind():
    reservoir = Reservoir(16, "fifo", watermark=1)  # small: the endless stream soon blocks on it
    generator = Generator(tiny_heat(), reservoir, workers=1).start()
    reservoir.sample(4, timeout=60)
    generator.close()
    assert not generator.running
    assert not [t for t in threading.enumerate() if t.name.startswith("pdekit-generator")]
    assert not multiprocessing.active_children()


# ----- online runs --------------------------------------------------------------------------------
def online_config(**online):
    from pdekit.runs import ExperimentConfig

    return ExperimentConfig.from_dict(
        {
            "data": {"batch_size": 4},
            "model": {"name": "fno", "settings": {"width": 8, "modes": 4}},
            "trainer": {"epochs": 2, "progress": False},
            "online": {"recipe": "tiny_heat", "capacity": 64, "watermark": 16, "steps_per_epoch": 5, "validation_members": 3, **online},
        }
    )


def test_online_run_trains_checkpoints_resumes_and_evaluates(tmp_path, monkeypatch):
    from pdekit.data import RECIPES
    from pdekit.runs import evaluate
    from pdekit.runs.online import train_online

    monkeypatch.setitem(RECIPES, "tiny_heat", tiny_heat)
    run = tmp_path / "run"
    first = train_online(online_config(), run).history
    assert len(first) == 2 and first[-1]["members_solved"] > 0 and 0 <= first[-1]["waiting_fraction"] <= 1
    # Melissa's rule (min_seen=1, the default): nothing leaves the reservoir before the trainer drew it
    assert 0 < first[-1]["samples_evicted"] <= first[-1]["unique_samples_drawn"] <= first[-1]["samples_admitted"]
    resumed = train_online(online_config().with_overrides(trainer={"epochs": 3}), run, resume=True)
    assert resumed.epoch == 3 and resumed.history[:2] == first
    # the reservoir came back with the checkpoint's counters, and the stream went on from where it stood: a refilled
    # reservoir would count only the resumed epoch's 20 draws, and the trainer alone moves the unique-draw count
    assert resumed.history[-1]["unique_samples_drawn"] >= first[-1]["unique_samples_drawn"]
    assert resumed.history[-1]["samples_admitted"] >= first[-1]["samples_admitted"]
    assert resumed.history[-1]["next_member"] >= first[-1]["next_member"]
    result = evaluate(run)
    assert result.members == 3 and result.store.endswith("validation.zarr")


def test_online_command_runs_end_to_end(tmp_path, monkeypatch, capsys):
    from pdekit.cli import main
    from pdekit.data import RECIPES

    monkeypatch.setitem(RECIPES, "tiny_heat", tiny_heat)
    code = main(
        [
            "online",
            "--recipe",
            "tiny_heat",
            "--model",
            "fno",
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
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
            "--policy",
            "firo",
            "--members",
            "8",
            "--tee",
            str(tmp_path / "tee.zarr"),
            "--set",
            "model.width=8",
            "--set",
            "model.modes=4",
            "--no-progress",
        ]
    )
    assert code == 0 and "members solved" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "tee.zarr")]) == 0


def test_held_out_members_of_the_streamed_recipe_never_enter_the_stream(tmp_path):
    from pdekit.runs.online import prepare_validation

    generate(tiny_heat(), tmp_path / "store.zarr", device="cpu", progress=False)
    config = online_config(validation_store=str(tmp_path / "store.zarr")).with_overrides(data={"validation_fraction": 0.25})
    _, exclude = prepare_validation(config, tiny_heat(), tmp_path, progress=False)
    assert exclude == [6, 7]
    _, exclude = prepare_validation(config, tiny_heat(seed=5), tmp_path, progress=False)
    assert exclude == []  # another draw: nothing to leave out
    with pytest.raises(ValueError, match=r"streams \[.temperature.\] on"):
        prepare_validation(config, tiny_heat(shape=(32, 32)), tmp_path, progress=False)


def test_held_out_and_already_used_members_are_solved_with_their_batch_so_the_rest_keep_their_offline_bits(tmp_path):
    from pdekit.data.recipes import burgers_1d

    # The CFL step is chosen over the whole batch: a member solved without its batch-mates takes
    # other steps and other bits. Members 1 (held out) and 4 (used before a resume) are dropped after solving.
    recipe = burgers_1d().with_overrides(
        shape=(128,), stored_shape=(64,), times=(0.05, 0.1, 0.15), dt=0.05, members=6, batch_size=3
    )  # the CFL limit binds
    generate(recipe, tmp_path / "offline.zarr", device="cpu", progress=False)
    offline = Windows(tmp_path / "offline.zarr", input_steps=1, target_steps=1)
    per_member = len(offline.starts)
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(recipe, reservoir, members=6, exclude=[1], start_member=0, device="cpu", workers=0):
        first = collect(reservoir)
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(recipe, reservoir, members=6, start_member=5, device="cpu", workers=0):
        resumed = collect(reservoir)
    expected = offline.__getitems__([i for m in (0, 2, 3, 4, 5) for i in range(m * per_member, (m + 1) * per_member)])
    torch.testing.assert_close(first[0], torch.stack([e.inputs for e in expected]), rtol=0, atol=0)
    torch.testing.assert_close(resumed[0], torch.stack([e.inputs for e in expected[-per_member:]]), rtol=0, atol=0)


def test_stream_batches_follow_each_blocks_offline_partition_and_are_solved_whole():
    from itertools import islice

    reservoir = Reservoir(10, "fifo")
    generator = Generator(tiny_heat(members=5, batch_size=2), reservoir, members=8, start_member=3, device="cpu", workers=0)
    assert list(islice(generator.batches(), 10)) == [[2, 3], [4], [5, 6], [7, 8]]  # block 1 is members 5..9, partitioned as the store
    assert generator.dropped([2, 3]) == {2} and generator.dropped([7, 8]) == {8}
