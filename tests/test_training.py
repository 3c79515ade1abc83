"""The Trainer: losses, atomic checkpoints, exact resume, metrics, DDP equivalence."""

import json
import logging
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pdekit import Grid
from pdekit.data import EpochSampler, shard
from pdekit.models import build_model, model_from_spec
from pdekit.solvers import GaussianRandomField, Heat
from pdekit.training import (
    MetricsLog,
    Process,
    Trainer,
    TrainerConfig,
    init_from_environment,
    load_checkpoint,
    make_loss,
    relative_h1,
    relative_l2,
    save_checkpoint,
)
from pdekit.training.trainer import LearningRateSchedule, OneStep


def heat_data(count=64, points=32):
    """Pairs ``(u(0), u(1))`` of the 1D heat equation (``kappa=0.005``) from Gaussian random initial states."""
    solver = Heat(Grid((points,)), 0.005, dtype=torch.float64, device="cpu", initial_field=GaussianRandomField(alpha=2.0, tau=5.0))
    u0 = solver.initial_condition(count, seeds=range(count))
    return TensorDataset(u0.float(), solver.solve(u0, [1.0], 1.0)[:, 0].float())


def loaders(data, batch=16):
    return DataLoader(data, batch_size=batch, sampler=EpochSampler(len(data), seed=3)), DataLoader(data, batch_size=batch)


def small_fno():
    torch.manual_seed(0)
    return build_model("fno", 1, 1, dim=1, modes=6, width=8, layers=2)


def test_relative_l2_is_the_batch_mean_of_per_sample_relative_errors():
    target = torch.randn(4, 1, 16)
    prediction = target * torch.tensor([1.1, 1.2, 1.3, 1.4]).view(4, 1, 1)
    assert relative_l2(1)(prediction, target).item() == pytest.approx(0.25, rel=1e-5)


def test_relative_h1_is_zero_for_exact_prediction_and_sees_derivatives():
    x = torch.arange(64) / 64
    smooth = torch.sin(2 * torch.pi * x).view(1, 1, 64)
    wiggle = 0.01 * torch.sin(2 * torch.pi * 16 * x).view(1, 1, 64)
    assert relative_h1(1)(smooth, smooth).item() == pytest.approx(0.0, abs=1e-6)
    assert relative_h1(1)(smooth + wiggle, smooth).item() > 5 * relative_l2(1)(smooth + wiggle, smooth).item()


def test_epoch_sampler_order_depends_only_on_seed_and_epoch_and_shards_partition_it():
    a, b = EpochSampler(10, seed=1), EpochSampler(10, seed=1)
    list(a)  # consuming one epoch must not change the next
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b) and sorted(b) == list(range(10))
    shards = [EpochSampler(10, seed=1, rank=r, replicas=2) for r in range(2)]
    assert sorted(list(shards[0]) + list(shards[1])) == list(range(10))
    assert shard(list(range(5)), 1, 2) == [1, 3, 0]  # padded by wrapping so every rank gets equal batches


def test_trainer_learns_the_heat_semigroup_and_writes_one_metrics_line_per_epoch(tmp_path):
    train, validation = loaders(heat_data())
    trainer = Trainer(small_fno(), TrainerConfig(epochs=20, learning_rate=1e-2, progress=False), run_dir=tmp_path)
    history = trainer.fit(train, validation)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(20))
    assert history[-1]["validation_l2"] < min(0.15, history[0]["validation_l2"] / 5)  # measured 0.076 from 0.99


def test_killed_training_resumed_ends_with_the_uninterrupted_weights(tmp_path):
    data = heat_data()
    config = TrainerConfig(epochs=4, learning_rate=1e-2, progress=False)
    uninterrupted = Trainer(small_fno(), config, run_dir=tmp_path / "a")
    uninterrupted.fit(*loaders(data))

    class KilledInEpoch2(DataLoader):
        def __iter__(self):
            for i, batch in enumerate(super().__iter__()):
                if self.sampler.epoch == 2 and i == 2:
                    raise KeyboardInterrupt  # as a kill mid-epoch: the last checkpoint is epoch 1's
                yield batch

    killed = Trainer(small_fno(), config, run_dir=tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        killed.fit(KilledInEpoch2(data, batch_size=16, sampler=EpochSampler(len(data), seed=3)), loaders(data)[1])
    torch.manual_seed(123)  # a new process: other random state, other initial weights
    resumed = Trainer(build_model("fno", 1, 1, dim=1, modes=6, width=8, layers=2), config, run_dir=tmp_path / "b")
    resumed.fit(*loaders(data), resume=True)
    for p, q in zip(uninterrupted.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [r["epoch"] for r in map(json.loads, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines())] == [0, 1, 2, 3]


def test_an_existing_checkpoint_is_never_overwritten_without_resume(tmp_path):
    Trainer(small_fno(), TrainerConfig(epochs=1, progress=False), run_dir=tmp_path).fit(loaders(heat_data())[0])
    with pytest.raises(FileExistsError, match="checkpoint.pt exists"):
        Trainer(small_fno(), TrainerConfig(epochs=1, progress=False), run_dir=tmp_path).fit(loaders(heat_data())[0])


def test_checkpoint_rebuilds_the_model_and_loads_weights_only(tmp_path):
    trainer = Trainer(small_fno(), TrainerConfig(epochs=1, progress=False), run_dir=tmp_path)
    trainer.fit(loaders(heat_data())[0])
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    model = model_from_spec(state["model_spec"])
    model.load_state_dict(state["model"])
    x = torch.randn(2, 1, 32)
    assert torch.equal(model(x), trainer.model(x))


def test_failed_checkpoint_write_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"weights": torch.ones(3)})
    with pytest.raises((AttributeError, pickle.PicklingError)):  # how pickle refuses a local lambda depends on the Python version
        save_checkpoint(path, {"weights": torch.zeros(3), "unpicklable": lambda: None})
    assert torch.equal(load_checkpoint(path)["weights"], torch.ones(3))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_checkpoint_holding_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"callback": print}, path)
    with pytest.raises(ValueError, match="evil.pt is not a readable pdekit checkpoint"):
        load_checkpoint(path)


DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from torch.utils.data import DataLoader
    from pdekit.models import build_model
    from pdekit.data import EpochSampler
    from pdekit.training import Trainer, TrainerConfig, init_from_environment
    sys.path.insert(0, sys.argv[2])
    from test_training import heat_data
    process = init_from_environment()
    data = heat_data()
    torch.manual_seed(0)
    model = build_model("fno", 1, 1, dim=1, modes=6, width=8, layers=2)
    sampler = EpochSampler(len(data), seed=3, rank=process.rank, replicas=process.replicas)
    trainer = Trainer(model, TrainerConfig(epochs=3, learning_rate=1e-2, progress=False), run_dir=sys.argv[1], process=process)
    trainer.fit(DataLoader(data, batch_size=16 // process.replicas, sampler=sampler))
    """
)


def test_ddp_on_two_cpu_processes_matches_one_process_with_the_same_global_batch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(DDP_SCRIPT)
    tests = os.path.dirname(__file__)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(script), str(tmp_path / "single"), tests], check=True, env=env, timeout=300)
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tmp_path / "ddp"),
        tests,
    ]
    subprocess.run(launch, check=True, env=env, timeout=300, capture_output=True)
    single, ddp = (load_checkpoint(tmp_path / run / "checkpoint.pt")["model"] for run in ("single", "ddp"))
    for name in single:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-4, atol=1e-5)


def test_a_cosine_schedule_that_ends_before_the_last_epoch_is_refused():
    with pytest.raises(ValueError, match="would train at its least rate"):
        TrainerConfig(epochs=10, schedule_epochs=5)
    assert TrainerConfig(epochs=10, schedule_epochs=20).schedule_epochs == 20


def test_schedule_epochs_not_set_is_none_meaning_epochs_and_an_earlier_files_zero_reads_as_none():
    from pdekit.runs import ExperimentConfig

    assert TrainerConfig().schedule_epochs is None
    earlier = ExperimentConfig.from_dict({"trainer": {"epochs": 10, "schedule_epochs": 0}}).trainer
    assert earlier == TrainerConfig(epochs=10)
    assert LearningRateSchedule(earlier).end == 10  # the cosine anneals over the run's epochs, as 0 meant
    assert LearningRateSchedule(TrainerConfig(epochs=10, schedule_epochs=20)).end == 20
    with pytest.raises(ValueError, match=r"^trainer.schedule_epochs must be >= 1; got -1$"):
        TrainerConfig(schedule_epochs=-1)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizer_names_build_their_torch_optimizer_with_the_configured_rate_and_decay(name, cls):
    trainer = Trainer(small_fno(), TrainerConfig(optimizer=name, learning_rate=3e-3, weight_decay=1e-5, progress=False), device="cpu")
    assert type(trainer.optimizer) is cls
    assert trainer.optimizer.defaults["lr"] == 3e-3 and trainer.optimizer.defaults["weight_decay"] == 1e-5


def test_an_unknown_optimizer_is_a_one_line_error_naming_the_option_and_the_choices():
    with pytest.raises(ValueError, match=r"^trainer.optimizer must be one of \['adam', 'adamw'\]; got 'sgd'$"):
        TrainerConfig(optimizer="sgd")


def test_the_default_device_is_pdekits_default_for_the_process_local_rank(monkeypatch):
    asked = []
    monkeypatch.setattr("pdekit.training.trainer.default_device", lambda rank=None: asked.append(rank) or torch.device("cpu"))
    trainer = Trainer(small_fno(), TrainerConfig(progress=False), process=Process(rank=0, replicas=1, local_rank=3))
    assert asked == [3] and trainer.device == torch.device("cpu")
    assert Trainer(small_fno(), TrainerConfig(progress=False), device="cpu").device == torch.device("cpu")


@pytest.mark.parametrize("device, backend", [(torch.device("cpu"), "gloo"), (torch.device("cuda", 1), "nccl")])
def test_torchrun_processes_use_nccl_on_their_default_gpu_and_gloo_on_the_cpu(monkeypatch, device, backend):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr("pdekit.training.distributed.default_device", lambda rank=None: calls.append(("device", rank)) or device)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda b: calls.append(("backend", b)))
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    assert init_from_environment() == Process(rank=1, replicas=2, local_rank=1)
    expected = [("device", 1)] + ([("set_device", device)] if backend == "nccl" else []) + [("backend", backend)]
    assert calls == expected


@pytest.mark.parametrize("progress", [True, False])
def test_progress_false_turns_the_epoch_bar_off(monkeypatch, progress):
    import pdekit.training.trainer as trainer_module

    enabled, real = [], trainer_module.progress_bar
    monkeypatch.setattr(
        trainer_module, "progress_bar", lambda iterable=None, **options: enabled.append(options["enabled"]) or real(iterable, **options)
    )
    Trainer(small_fno(), TrainerConfig(epochs=2, progress=progress), device="cpu").fit(loaders(heat_data(16))[0])
    assert enabled == [progress, progress]


def test_each_epoch_record_is_logged_at_info_and_nothing_is_printed(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="pdekit.training.trainer"):
        Trainer(small_fno(), TrainerConfig(epochs=2, progress=True), device="cpu").fit(loaders(heat_data(16))[0])
    lines = [r.getMessage() for r in caplog.records if r.name == "pdekit.training.trainer"]
    assert [line.split(",")[0] for line in lines] == ["epoch 0", "epoch 1"] and all("train_loss" in line for line in lines)
    assert capsys.readouterr().out == ""


class AddOne(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.ones(()))

    def forward(self, x, params=None):
        return x + self.offset


def test_denormalize_maps_predictions_and_targets_before_the_validation_metrics():
    x = torch.linspace(1.0, 2.0, 8).view(1, 1, 8)
    trainer = Trainer(AddOne(), TrainerConfig(progress=False), device="cpu", denormalize=lambda u: 2 * u + 5)
    # physical prediction 2 (x + 1) + 5 and target 2 x + 5: the error is ||2|| / ||2 x + 5||
    expected = (2 * torch.ones(8)).norm() / (2 * x + 5).norm()
    assert trainer.evaluate([(x, x)])["l2"] == pytest.approx(expected.item(), rel=1e-6)


def test_decode_is_a_deprecated_name_of_denormalize():
    def double(u):
        return 2 * u

    with pytest.warns(DeprecationWarning, match="denormalize"):
        trainer = Trainer(AddOne(), TrainerConfig(progress=False), device="cpu", decode=double)
    assert trainer.denormalize is double
    with pytest.raises(ValueError, match="give denormalize only"):
        Trainer(AddOne(), TrainerConfig(progress=False), device="cpu", decode=double, denormalize=double)


def test_a_train_step_before_fit_trains_the_one_step_objective():
    data = heat_data(16)
    trainer = Trainer(small_fno(), TrainerConfig(progress=False), device="cpu")
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.train_step(data.tensors[0], data.tensors[1], None, make_loss("l2", 1))
    assert torch.isfinite(loss) and isinstance(trainer.objective, OneStep)
    assert any(not torch.equal(p, q) for p, q in zip(before, trainer.model.parameters(), strict=True))


def test_metrics_log_truncation_keeps_the_epochs_a_checkpoint_covers(tmp_path):
    metrics = MetricsLog(tmp_path / "run" / "metrics.jsonl")
    for epoch in range(4):
        metrics.write({"epoch": epoch, "train_loss": 1.0 / (epoch + 1)})
    metrics.truncate_after(1)
    assert [r["epoch"] for r in metrics.read()] == [0, 1]


def test_one_cycle_rates_are_torch_one_cycle_lrs_at_every_batch_and_resume_exactly(tmp_path):
    # the Galerkin transformer's authors' schedule: OneCycleLR(pct_start=0.2, div_factor=1e4, final_div_factor=1e4), stepped per batch
    data = heat_data()
    config = TrainerConfig(
        epochs=3, learning_rate=1e-2, schedule="one_cycle", one_cycle_warmup=0.2, one_cycle_div=1e4, one_cycle_final_div=1e4, progress=False
    )
    train, _ = loaders(data)
    reference = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-2)
    torch_schedule = torch.optim.lr_scheduler.OneCycleLR(
        reference, max_lr=1e-2, pct_start=0.2, div_factor=1e4, final_div_factor=1e4, epochs=3, steps_per_epoch=len(train)
    )
    expected = []
    for _ in range(3 * len(train)):
        expected.append((reference.param_groups[0]["lr"], *reference.param_groups[0]["betas"]))
        reference.step()
        torch_schedule.step()

    seen = []
    trainer = Trainer(small_fno(), TrainerConfig(**{**config.__dict__, "optimizer": "adam"}), run_dir=tmp_path / "a")
    trainer.optimizer.register_step_pre_hook(
        lambda optimizer, *_: seen.append((optimizer.param_groups[0]["lr"], *optimizer.param_groups[0]["betas"]))
    )
    trainer.fit(*loaders(data))
    assert [v for step in seen for v in step] == pytest.approx([v for step in expected for v in step], rel=1e-12)  # rate and beta1 cycle
    config = TrainerConfig(**{**config.__dict__, "optimizer": "adam"})

    first = Trainer(small_fno(), TrainerConfig(**{**config.__dict__, "epochs": 1, "schedule_epochs": 3}), run_dir=tmp_path / "b")
    first.fit(*loaders(data))
    with pytest.raises(ValueError, match="ends the one_cycle schedule before"):
        TrainerConfig(**{**config.__dict__, "schedule_epochs": 2})
    resumed = Trainer(small_fno(), config, run_dir=tmp_path / "b")  # the plan over 3 epochs, continued after the first
    resumed.fit(*loaders(data), resume=True)
    for p, q in zip(trainer.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match=r"trainer.epochs=5 runs past the one_cycle schedule's end \(3 epochs, from the checkpoint\)"):
        Trainer(small_fno(), TrainerConfig(**{**config.__dict__, "epochs": 5}), run_dir=tmp_path / "b").fit(*loaders(data), resume=True)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"one_cycle_warmup": 1.0}, r"trainer.one_cycle_warmup must be in \(0, 1\); got 1.0"),
        ({"one_cycle_div": 0.5}, "trainer.one_cycle_div must be >= 1 and finite; got 0.5"),
        ({"schedule": "onecycle"}, "trainer.schedule must be one of 'cosine', 'step', 'constant', 'one_cycle'; got 'onecycle'"),
    ],
)
def test_bad_one_cycle_settings_are_refused_by_name(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**setting)


def test_galerkin_h1_is_relative_l2_plus_the_authors_gradient_regulariser_on_a_hand_computed_input():
    from pdekit.training.losses import galerkin_h1

    target = torch.tensor([0.0, 1.0, 0.0, -1.0]).view(1, 1, 4)
    prediction = target + torch.tensor([0.1, 0.0, 0.0, 0.0]).view(1, 1, 4)
    # fit sqrt(0.01 / 2); periodic D t = (4, 0, -4, 0) (h = 1/4), sum 32; interior D p - D t = (-0.2, 0): sum 0.04
    expected = (0.01 / 2) ** 0.5 + (0.1 * 0.25 * 0.04 / 32) ** 0.5
    assert galerkin_h1(1)(prediction, target).item() == pytest.approx(expected, rel=1e-6)
    assert galerkin_h1(1)(target, target).item() == pytest.approx(0.0, abs=1e-7)
    assert make_loss("galerkin_h1", 1)(prediction, target).item() == pytest.approx(expected, rel=1e-6)


def test_galerkin_h1_refuses_data_that_are_not_1d_and_stays_finite_on_a_constant_target():
    from pdekit.training.losses import galerkin_h1

    with pytest.raises(ValueError, match="'galerkin_h1' is the Galerkin authors' 1D loss; the data have 2 space axes"):
        galerkin_h1(2)
    constant = torch.ones(2, 1, 8)
    assert torch.isfinite(galerkin_h1(1)(constant + 0.1, constant))
