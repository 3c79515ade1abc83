"""The online layer's options: reservoir policies by name, where the generator's tasks run, and None as the default throughout."""

import numpy as np
import pytest
import torch
from test_online import collect, tiny_heat

from pdekit.online import POLICIES, Generator, OnlineConfig, Reservoir
from pdekit.online.generator import DaskWorkers, SolverProcesses, SolverThread, executor
from pdekit.online.reservoir import FirstInFirstOut, FirstInRandomOut, ReservoirSampling, Slots, make_policy


# ----- reservoir policies ----------------------------------------------------------------------
def test_policies_are_named_as_the_command_offers_them():
    assert list(POLICIES) == ["fifo", "firo", "reservoir"]
    assert all(policy.name == name for name, policy in POLICIES.items())
    assert [POLICIES[name].uses_each_once for name in POLICIES] == [True, True, False]


@pytest.mark.parametrize(
    "build, option",
    [
        (lambda: Reservoir(4, "lifo"), "Reservoir policy"),
        (lambda: make_policy("lifo"), "Reservoir policy"),
        (lambda: OnlineConfig(policy="lifo"), "online.policy"),
    ],
)
def test_an_unknown_policy_is_refused_in_one_line_naming_the_choices(build, option):
    with pytest.raises(ValueError, match=rf"^{option} must be one of \['fifo', 'firo', 'reservoir'\]; got 'lifo'$") as error:
        build()
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize("name", ["fifo", "firo"])
def test_min_seen_is_refused_by_the_policies_that_use_each_sample_once(name):
    with pytest.raises(ValueError, match="min_seen=1: .*'reservoir' policy only"):
        make_policy(name, min_seen=1)
    with pytest.raises(ValueError, match="min_seen=-1"):
        make_policy("reservoir", min_seen=-1)


def slots(occupied, arrival=None, seen=None):
    n = len(occupied)
    return Slots(np.array(occupied, dtype=bool), np.array(arrival or [0] * n), np.array(seen or [0] * n))


def test_each_policy_draws_by_its_rule():
    book = slots([True, False, True, True], arrival=[5, 0, 2, 9])
    rng = np.random.default_rng(0)
    assert FirstInFirstOut().draw(book, 2, rng).tolist() == [2, 0]  # the two oldest held
    firo = FirstInRandomOut().draw(book, 5, rng)
    assert sorted(firo.tolist()) == [0, 2, 3]  # each held sample once, fewer when fewer are held
    repeated = ReservoirSampling().draw(book, 6, rng)
    assert len(repeated) == 6 and set(repeated.tolist()) <= {0, 2, 3}  # a full batch, with repeats


def test_only_the_reservoir_policy_replaces_and_melissa_replaces_only_samples_seen_enough():
    book = slots([True] * 4, seen=[0, 3, 1, 2])
    rng = np.random.default_rng(0)
    assert FirstInFirstOut().replace(book, 3, 4, rng) == [] and FirstInRandomOut().replace(book, 3, 4, rng) == []
    assert sorted(ReservoirSampling(min_seen=2).replace(book, 5, 4, rng)) == [1, 3]
    algorithm_r = ReservoirSampling().replace(book, 1000, 4, rng)
    assert len(algorithm_r) == 1000 and all(-1 <= v < 4 for v in algorithm_r)
    admitted = np.array(algorithm_r) >= 0  # the t-th offered is admitted with probability 4 / t, t = 5 .. 1004
    assert admitted.sum() == pytest.approx(sum(4 / t for t in range(5, 1005)), abs=4 * 3)


# ----- executors and the workers sentinel ----------------------------------------------------------
def test_workers_choose_where_the_tasks_run():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert isinstance(executor(None, None, cuda), SolverThread)  # the default on a GPU: a thread
    default = executor(None, None, cpu)
    assert isinstance(default, SolverProcesses) and default.workers == 1 and default.in_flight == 2  # on the CPU: one process
    thread = executor(0, None, cpu)
    assert isinstance(thread, SolverThread) and thread.task_device == cpu and thread.in_flight == 1
    three = executor(3, None, cuda)
    assert isinstance(three, SolverProcesses) and three.task_device == cpu and three.in_flight == 4


class FakeClient:
    def scheduler_info(self):
        return {"workers": {"a": {}, "b": {}}}


def test_a_dask_client_runs_the_tasks_on_its_workers_cpus():
    generator = Generator(tiny_heat(), Reservoir(8), client=FakeClient())
    assert isinstance(generator.executor, DaskWorkers) and generator.in_flight == 3 and generator.device == torch.device("cpu")


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(workers=-1), r"^workers must be >= 0 \(0: a thread of this process\) or None \(the default\); got -1$"),
        (dict(workers=0, client=FakeClient()), r"^workers=0 and a dask client"),
        (dict(in_flight=0), r"^in_flight must be >= 1"),
    ],
)
def test_contradictory_generator_options_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        Generator(tiny_heat(), Reservoir(8), **options)


def test_workers_zero_is_a_thread_of_this_process_and_none_the_default():
    thread = Generator(tiny_heat(), Reservoir(8), workers=0, device="cpu")
    assert isinstance(thread.executor, SolverThread) and thread.executor.task_device == torch.device("cpu")
    default = Generator(tiny_heat(), Reservoir(8), device="cpu")
    assert isinstance(default.executor, SolverProcesses) and default.executor.workers == 1


def test_online_config_workers_mean_what_the_generators_mean():
    from pdekit.runs import ExperimentConfig

    assert OnlineConfig().workers is None  # the default: a thread on a GPU, one process on the CPU
    assert OnlineConfig(workers=0).workers == 0  # a thread, as Generator(workers=0)
    assert ExperimentConfig.from_dict({"online": {"workers": 2}}).online.workers == 2  # the config file's key
    assert ExperimentConfig.from_dict({}).online.workers is None
    with pytest.raises(ValueError, match="online.workers must be >= 0; got -1"):
        OnlineConfig(workers=-1)
    with pytest.raises(ValueError, match="online.workers=2 and online.scheduler"):
        OnlineConfig(workers=2, scheduler="tcp://localhost:8786")
    # a run directory of pdekit < 0.2 saved workers = 0 for the default, beside its scheduler: it still loads and resumes
    assert OnlineConfig(workers=0, scheduler="tcp://localhost:8786").workers is None


UNSET_ONLINE = ("recipe", "watermark", "members", "batch_size", "scheduler", "solver_device", "validation_store", "tee")


def test_online_settings_not_set_are_none_and_an_earlier_files_zeros_and_empty_strings_read_as_none():
    from pdekit.runs import ExperimentConfig
    from pdekit.runs.online import online_recipe

    assert all(getattr(OnlineConfig(), name) is None for name in UNSET_ONLINE)
    earlier = {"recipe": "", "watermark": 0, "members": 0, "batch_size": 0, "scheduler": "", "solver_device": "", "validation_store": ""}
    assert ExperimentConfig.from_dict({"online": {**earlier, "tee": ""}}).online == OnlineConfig()
    # as before: the recipe's batch size, and a reservoir filled to half its capacity before training
    read = ExperimentConfig.from_dict({"online": {**earlier, "recipe": "burgers_1d", "capacity": 64}})
    assert online_recipe(read).batch_size == online_recipe(ExperimentConfig.from_dict({"online": {"recipe": "burgers_1d"}})).batch_size
    assert Reservoir(read.online.capacity, watermark=read.online.watermark).watermark == 32
    given = OnlineConfig(
        recipe="burgers_1d", watermark=16, members=8, batch_size=2, solver_device="cpu", validation_store="v.zarr", tee="t.zarr"
    )
    assert [getattr(given, name) for name in UNSET_ONLINE] == ["burgers_1d", 16, 8, 2, None, "cpu", "v.zarr", "t.zarr"]
    assert online_recipe(ExperimentConfig(online=given)).batch_size == 2
    assert OnlineConfig(scheduler="tcp://localhost:8786").scheduler == "tcp://localhost:8786"
    with pytest.raises(ValueError, match=r"^online.members must be >= 1; got -1$"):
        OnlineConfig(members=-1)
    with pytest.raises(ValueError, match=r"^online.tee needs online.members"):
        OnlineConfig(tee="t.zarr")


def test_a_thread_generator_streams_every_member_once():
    reservoir = Reservoir(1000, "fifo", watermark=1)
    with Generator(tiny_heat(members=4, batch_size=2), reservoir, members=4, workers=0, device="cpu") as generator:
        inputs, *_ = collect(reservoir)
    assert generator.counters.members == 4 and len(inputs) == 4 * 6 and generator.counters.next_member == 4
