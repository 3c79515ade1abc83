"""A run directory that cannot lie: resume checks, schedule extension, the recorded store and statistics, the run lock, bad checkpoints."""

import dataclasses
import importlib
import json
import math
import shutil
import subprocess
import sys
import textwrap
import time
import typing
from itertools import pairwise

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from torch.utils.data import DataLoader, TensorDataset

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pdekit.devices
from pdekit.data import EpochSampler, generate
from pdekit.data.lock import LockedError
from pdekit.data.recipes import burgers_1d
from pdekit.data.store import consolidate
from pdekit.models import build_model
from pdekit.runs import ExperimentConfig, evaluate, evaluate_rollout, load_config, load_run, save_config, train
from pdekit.runs.config import SECTIONS
from pdekit.runs.integrity import checkpoint_trainer_settings
from pdekit.runs.train import training_device
from pdekit.training import Trainer, TrainerConfig, load_checkpoint, save_checkpoint
from pdekit.training.distributed import Process

TRAIN = importlib.import_module("pdekit.runs.train")  # the module: pdekit.runs.train is the function train


def tiny_burgers(**changes):
    settings = dict(shape=(128,), stored_shape=(32,), times=tuple(0.05 * i for i in range(1, 9)), members=8, batch_size=8)
    return burgers_1d().with_overrides(**{**settings, **changes})


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "burgers.zarr"
    generate(tiny_burgers(), path, device="cpu", progress=False)
    return path


@pytest.fixture
def store(generated, tmp_path):
    """A copy of the generated store for one test, which may change or regenerate it."""
    shutil.copytree(generated, tmp_path / "burgers.zarr")
    return tmp_path / "burgers.zarr"


def config(store, **sections):
    values = {
        "data": {"store": str(store), "batch_size": 16},
        "model": {"name": "fno", "settings": {"modes": 8, "width": 8, "layers": 2}},
        "trainer": {"epochs": 1, "progress": False},
    }
    for name, updates in sections.items():
        if name == "seed":
            values["seed"] = updates
        elif name == "width":
            values["model"]["settings"]["width"] = updates
        else:
            values.setdefault(name, {}).update(updates)
    return ExperimentConfig.from_dict(values)


def files(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ----- 1, 2: a resume that would change what the checkpoint means is refused, writing nothing ------
def test_a_refused_resume_names_every_difference_and_leaves_config_and_checkpoint_untouched(store, tmp_path):
    run = tmp_path / "run"
    train(config(store), run)
    before = {name: (run / name).read_bytes() for name in ("config.toml", "checkpoint.pt", "metrics.jsonl")}
    asked = config(store, width=16, trainer={"epochs": 2, "learning_rate": 1e-2}, data={"stride": 2, "batch_size": 8}, seed=1)
    with pytest.raises(ValueError) as refused:
        train(asked, run, resume=True)
    message = str(refused.value)
    assert "\n" not in message and str(run) in message
    for difference in (
        "model.settings.width: run has 8, asked 16",
        "trainer.learning_rate: run has 0.001, asked 0.01",
        "data.stride: run has 1, asked 2",
        "data.batch_size: run has 16, asked 8",
        "seed: run has 0, asked 1",
    ):
        assert difference in message
    assert "trainer.epochs" not in message.split(". Only")[0]  # more epochs is allowed
    assert {name: (run / name).read_bytes() for name in before} == before


def test_a_checkpoint_that_does_not_fit_the_model_is_a_one_line_error_naming_the_settings(store, tmp_path):
    run = tmp_path / "run"
    train(config(store), run)
    save_config(config(store, width=16), run / "config.toml")  # a config that lies about the weights, as a failed resume once left it
    lying = (run / "config.toml").read_bytes()
    with pytest.raises(ValueError) as refused:
        train(config(store, width=16), run, resume=True)
    assert "\n" not in str(refused.value) and str(run) in str(refused.value)
    assert "model.settings.width: run has 8, asked 16" in str(refused.value)
    assert (run / "config.toml").read_bytes() == lying


def test_resuming_with_more_epochs_and_another_worker_count_trains_on_and_config_records_it(store, tmp_path):
    run = tmp_path / "run"
    train(config(store), run)
    train(config(store, trainer={"epochs": 2}, data={"workers": 1}), run, resume=True)
    recorded = load_config(run / "config.toml")
    assert (recorded.trainer.epochs, recorded.data.workers) == (2, 1)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1] and all(r["learning_rate"] > 0 for r in records)


# ----- 3: a schedule extended on resume --------------------------------------------------------------
def rates(run_dir, schedule, plans):
    """Returns the learning rate of every epoch of a run trained for ``plans[0]`` epochs, then resumed for each next count."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 16)
    data = TensorDataset(x, x.roll(1, -1))
    for i, epochs in enumerate(plans):
        model = build_model("fno", 1, 1, dim=1, modes=2, width=4, layers=1)
        trainer = Trainer(model, TrainerConfig(epochs=epochs, schedule=schedule, step_epochs=3, progress=False), run_dir=run_dir)
        trainer.fit(DataLoader(data, batch_size=8, sampler=EpochSampler(8, seed=0)), resume=i > 0)
    return [record["learning_rate"] for record in trainer.history]


def test_resuming_for_more_epochs_extends_the_schedule_instead_of_training_at_rate_zero(tmp_path):
    cosine = lambda phase: 1e-3 * (1 + math.cos(phase)) / 2  # noqa: E731
    uninterrupted, resumed, ten = (rates(tmp_path / name, "cosine", plan) for name, plan in (("a", [20]), ("b", [10, 20]), ("c", [10])))
    assert uninterrupted == pytest.approx([cosine(math.pi * e / 20) for e in range(20)], rel=1e-12)
    assert resumed[:10] == ten  # the epochs already trained keep their rates
    # the phase goes on from the last trained epoch's (0.9 pi) to pi at the new end: never 0, never rising
    assert resumed[10:] == pytest.approx([cosine(0.9 * math.pi + 0.1 * math.pi * (e - 9) / 11) for e in range(10, 20)], rel=1e-12)
    assert min(resumed) > 0 and all(a >= b for a, b in pairwise(resumed))
    assert resumed[:10] != pytest.approx(uninterrupted[:10])  # a 10-epoch plan annealed faster; its past is not re-planned
    for schedule, expected in (("step", [1e-3 * 0.5 ** (e // 3) for e in range(20)]), ("constant", [1e-3] * 20)):
        extended = rates(tmp_path / f"{schedule}_b", schedule, [10, 20])
        assert extended == rates(tmp_path / f"{schedule}_a", schedule, [20]) == pytest.approx(expected, rel=1e-12)


# ----- 4: the recorded store and statistics -------------------------------------------------------
def test_evaluate_and_rollout_find_the_run_store_from_another_working_directory(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train(config("burgers.zarr"), "run")  # both relative to the working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert evaluate(tmp_path / "run").store == str(store)
    assert evaluate_rollout(tmp_path / "run").members == 1
    recorded = json.loads((tmp_path / "run" / "data.json").read_text())
    assert recorded["store"] == str(store) and recorded["validation_members"] == [7] and recorded["training_members"] == list(range(7))
    assert (
        recorded["fingerprint"]["members"] == 8
        and recorded["fingerprint"]["completed"] == 8
        and recorded["fingerprint"]["fields"] == ["velocity"]
    )


def test_another_ensemble_at_the_recorded_path_is_refused(store, tmp_path):
    run = tmp_path / "run"
    train(config(store), run)
    shutil.rmtree(store)
    generate(tiny_burgers(seed=5), store, device="cpu", progress=False)
    for command in (evaluate, evaluate_rollout):
        with pytest.raises(ValueError, match=r"is not the ensemble this run trained on.*recipe\.seed: run has 0, store has 5"):
            command(run)
    with pytest.raises(ValueError, match="recipe.seed: run has 0, store has 5"):
        train(config(store, trainer={"epochs": 2}), run, resume=True)


def test_evaluation_never_writes_into_the_store_it_reads(store, tmp_path):
    run = tmp_path / "run"
    before = files(store)
    train(config(store), run)
    assert files(store) == before  # training computed its statistics without saving them into the store
    first = evaluate(run)
    assert evaluate(run).l2 == pytest.approx(first.l2, rel=1e-6)
    evaluate_rollout(run)
    assert files(store) == before


def test_statistics_come_from_the_training_members_alone_and_evaluation_keeps_them(store, tmp_path):
    run = tmp_path / "run"
    train(config(store), run)
    saved = json.loads((run / "normalization.json").read_text())
    training = json.loads((run / "data.json").read_text())["training_members"]
    values = xr.open_zarr(store).velocity.values[training].astype(np.float64)
    assert saved["mean"][0] == pytest.approx(values.mean(), abs=1e-9) and saved["std"][0] == pytest.approx(values.std(), rel=1e-9)
    first = evaluate(run)
    trained_with = saved
    group = zarr.open_group(store, mode="r+")  # statistics saved into the store later must not change the run's
    group.attrs["normalization"] = json.dumps(
        {**trained_with, "mean": [m + 1.0 for m in trained_with["mean"]], "std": [2 * s for s in trained_with["std"]]}
    )
    consolidate(store)
    assert evaluate(run).l2 == pytest.approx(first.l2, rel=1e-6)
    assert json.loads((run / "normalization.json").read_text())["mean"] == trained_with["mean"]


# ----- 5: one writer per run directory ------------------------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys
    from pdekit.data.lock import DirectoryLock
    with DirectoryLock(sys.argv[1], "pdekit train"):
        print("locked", flush=True)
        sys.stdin.read()  # holds the lock until the test closes the pipe
    """
)


def test_a_run_directory_in_use_is_refused_at_once_by_a_second_training(store, tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with pytest.raises(LockedError, match=rf"{run} is in use by pid {holder.pid} \(pdekit train\)"):
            train(config(store), run)
        from pdekit.runs.online import train_online

        with pytest.raises(LockedError, match="is in use"):
            train_online(config(store, online={"recipe": "burgers_1d"}), run)
        from pdekit.cli import main

        assert main(["train", "--data", str(store), "--out", str(run), "--no-progress"]) == 2
        assert f"is in use by pid {holder.pid}" in capsys.readouterr().err
        assert time.perf_counter() - started < 10  # refused, not waited for
        assert [p.name for p in run.iterdir()] == [".pdekit.lock"]  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert train(config(store), run).epoch == 1  # the holder's exit released it


PROBE = "import sys\nfrom pdekit.data.lock import DirectoryLock\nwith DirectoryLock(sys.argv[1], 'probe'):\n    pass\n"


def test_training_holds_the_run_directory_lock_while_it_trains(store, tmp_path, monkeypatch):
    run, probes = tmp_path / "run", []
    fit = Trainer.fit

    def probing_fit(self, *args, **kwargs):
        probes.append(subprocess.run([sys.executable, "-c", PROBE, str(run)], capture_output=True, text=True, timeout=120))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", probing_fit)
    train(config(store), run)
    assert probes[0].returncode != 0 and "LockedError" in probes[0].stderr and "pdekit train" in probes[0].stderr


# ----- 6: checkpoints of the wrong type -----------------------------------------------------------
def test_a_checkpoint_of_the_wrong_type_is_a_one_line_error_naming_the_file(store, tmp_path):
    stray = tmp_path / "stray.pt"
    torch.save([1, 2, 3], stray)
    with pytest.raises(ValueError, match=r"stray\.pt holds a list, not a pdekit checkpoint"):
        load_checkpoint(stray)
    run = tmp_path / "run"
    train(config(store), run)
    torch.save({"weights": torch.ones(2)}, run / "checkpoint.pt")  # a dict, but not a Trainer's
    for attempt in (lambda: load_run(run), lambda: train(config(store, trainer={"epochs": 2}), run, resume=True)):
        with pytest.raises(ValueError, match=r"checkpoint\.pt is not a pdekit training checkpoint: it lacks \['model'") as refused:
            attempt()
        assert "\n" not in str(refused.value)
    model = build_model("fno", 1, 1, dim=1, modes=2, width=4, layers=1)
    x = torch.randn(4, 1, 16)
    with pytest.raises(ValueError, match=r"checkpoint\.pt is not a pdekit training checkpoint"):
        Trainer(model, TrainerConfig(epochs=1, progress=False), run_dir=run).fit(DataLoader(TensorDataset(x, x), batch_size=4), resume=True)


def test_training_on_a_missing_store_or_hdf5_data_touches_no_run_directory(tmp_path):
    import h5py

    with pytest.raises(ValueError, match="no Zarr ensemble there"):
        train(config(str(tmp_path / "missing.zarr")), tmp_path / "run")
    well = tmp_path / "well"
    well.mkdir()
    h5py.File(well / "data.hdf5", "w").close()
    with pytest.raises(ValueError, match="pdekit import"):
        train(config(str(well)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----- devices, configs and the kind of run a resume continues -------------------------------------
def test_evaluation_without_a_device_runs_where_default_device_says(store, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(config(store), run, device="cpu")
    asked = []

    def default_device(local_rank=None):
        asked.append(local_rank)
        return torch.device("cpu")

    monkeypatch.setattr(pdekit.devices, "default_device", default_device)
    evaluate(run)
    evaluate_rollout(run)
    assert asked == [None, None]


def test_the_training_device_is_the_one_asked_else_the_default_device_of_the_local_rank(monkeypatch):
    monkeypatch.setattr(TRAIN, "default_device", lambda local_rank=None: torch.device("meta", local_rank))
    process = Process(rank=1, replicas=2, local_rank=1)
    assert training_device(None, process) == torch.device("meta", 1)
    assert training_device("cpu", process) == torch.device("cpu")


def test_batches_are_pinned_only_for_a_cuda_trainer(store, tmp_path, monkeypatch):
    # A CPU run on a machine with CUDA: page-locking its batches would only cost host memory.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    pinned = []

    class Loader(DataLoader):
        def __init__(self, *args, pin_memory=False, **kwargs):
            pinned.append(pin_memory)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(TRAIN, "DataLoader", Loader)
    train(config(store), tmp_path / "run", device="cpu")
    assert pinned == [False, False]


def test_a_run_trained_on_a_stream_is_not_resumed_as_a_store_run(store, tmp_path):
    run = tmp_path / "run"
    train(config(store), run)
    record = json.loads((run / "data.json").read_text())
    (run / "data.json").write_text(json.dumps({**record, "training_members": None}))  # what pdekit online records
    before = files(run)
    with pytest.raises(ValueError, match="was trained on a stream .*pdekit online --resume"):
        train(config(store, trainer={"epochs": 2}), run, resume=True)
    assert files(run) == before


def test_a_config_with_unset_settings_round_trips_through_its_file(tmp_path):
    asked = ExperimentConfig.from_dict({"online": {"workers": None, "recipe": "burgers_1d"}})
    save_config(asked, tmp_path / "config.toml")
    assert "workers" not in tomllib.loads((tmp_path / "config.toml").read_text())["online"]
    assert load_config(tmp_path / "config.toml") == asked


def test_a_checkpoints_trainer_settings_read_an_earlier_versions_zero_as_none_and_keep_what_the_config_refuses():
    assert checkpoint_trainer_settings({"epochs": 3, "schedule_epochs": 0}) == {"epochs": 3, "schedule_epochs": None}
    assert checkpoint_trainer_settings({"epochs": 3, "schedule_epochs": 5}) == {"epochs": 3, "schedule_epochs": 5}
    assert checkpoint_trainer_settings({"schedule_epochs": 0, "warmup": 2}) == {"schedule_epochs": 0, "warmup": 2}  # named on resume


def test_a_run_directory_of_an_earlier_version_with_its_not_set_zeros_and_empty_strings_resumes(store, tmp_path):
    import tomli_w

    run = tmp_path / "run"
    train(config(store), run)
    values = tomllib.loads((run / "config.toml").read_text())
    values["trainer"]["schedule_epochs"] = 0
    values["rollout"]["derivative_scale"] = 0.0
    values["correction"].update(solver_dt=0.0, scale=0.0)
    values["online"].update(
        recipe="", watermark=0, members=0, batch_size=0, scheduler="", solver_device="", validation_store="", tee="", workers=0
    )
    (run / "config.toml").write_text(tomli_w.dumps(values))
    state = load_checkpoint(run / "checkpoint.pt")
    save_checkpoint(run / "checkpoint.pt", {**state, "trainer_config": {**state["trainer_config"], "schedule_epochs": 0}})
    train(config(store, trainer={"epochs": 2}), run, resume=True)
    recorded = tomllib.loads((run / "config.toml").read_text())
    assert "schedule_epochs" not in recorded["trainer"] and "tee" not in recorded["online"]  # rewritten with today's None
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 2


def test_every_setting_that_may_be_none_defaults_to_none():
    # What lets save_config leave None out of the file: reading it back restores None.
    for section in SECTIONS.values():
        hints = typing.get_type_hints(section)
        for setting in dataclasses.fields(section):
            if type(None) in typing.get_args(hints[setting.name]):
                assert setting.default is None, f"{section.__name__}.{setting.name}"
