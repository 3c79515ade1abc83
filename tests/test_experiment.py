"""`pdekit train`, `evaluate` and `info` on a small Burgers ensemble: configuration, outputs, resume, errors."""

import json
import math

import pytest
import tomllib

from pdekit.cli import main
from pdekit.data import generate
from pdekit.data.recipes import burgers_1d
from pdekit.runs import ExperimentConfig, load_config, save_config
from pdekit.runs import train as train_run
from pdekit.runs.config import DataConfig

TINY_MODEL = ["--set", "model.modes=8", "--set", "model.width=8", "--set", "model.layers=2"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "burgers.zarr"
    recipe = burgers_1d().with_overrides(
        shape=(128,), stored_shape=(32,), times=tuple(0.05 * i for i in range(1, 9)), members=8, batch_size=8
    )
    generate(recipe, path, device="cpu", progress=False)
    return path


def train(store, run, *extra):
    return main(["train", "--data", str(store), "--model", "fno", "--out", str(run), "--no-progress", *TINY_MODEL, *extra])


def test_train_writes_resolved_config_checkpoint_and_metrics_and_resumes(store, tmp_path):
    run = tmp_path / "run"
    assert train(store, run, "--epochs", "1", "--input-steps", "2", "--set", "trainer.weight_decay=0") == 0
    config = load_config(run / "config.toml")
    assert (config.data.input_steps, config.trainer.weight_decay, config.model.settings["width"]) == (2, 0, 8)
    assert tomllib.loads((run / "config.toml").read_text())["data"]["store"] == str(store)
    assert (
        train(store, run, "--epochs", "2", "--input-steps", "2", "--set", "trainer.weight_decay=0", "--resume") == 0
    )  # the run's settings, more epochs
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [0, 1]


def test_evaluate_reports_error_per_target_time(store, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(store, run, "--epochs", "1") == 0
    assert main(["evaluate", str(run)]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["times"] == pytest.approx([0.05 * i for i in range(1, 9)])  # every stored time after the first input
    assert result["members"] == 1 and len(result["l2_per_time"]) == 8 and 0 < result["l2"] < 10
    assert main(["info", str(run)]) == 0
    assert "1 epochs done" in capsys.readouterr().out


def test_train_refuses_unknown_settings_and_existing_runs(store, tmp_path, capsys):
    assert train(store, tmp_path / "a", "--set", "trainer.epoch=3") == 2
    assert "[trainer] has no key ['epoch']" in capsys.readouterr().err
    assert train(store, tmp_path / "b", "--set", "model.depth=3") == 2
    assert "has no setting ['depth']" in capsys.readouterr().err


def test_yaml_and_toml_configs_read_the_same(tmp_path):
    (tmp_path / "c.toml").write_text('seed = 3\n[trainer]\nepochs = 7\n[model]\nname = "ffno"\n[model.settings]\nwidth = 16\n')
    (tmp_path / "c.yaml").write_text("seed: 3\ntrainer: {epochs: 7}\nmodel: {name: ffno, settings: {width: 16}}\n")
    assert load_config(tmp_path / "c.toml") == load_config(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.toml").trainer.epochs == 7
    with pytest.raises(ValueError, match="unknown section or key"):
        ExperimentConfig.from_dict({"optimiser": {}})


def test_derivative_mode_run_rolls_out_at_half_the_stored_step_and_writes_figures(store, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(store, run, "--epochs", "2", "--input-steps", "2", "--mode", "derivative", "--integrator", "heun") == 0
    config = load_config(run / "config.toml")
    assert config.rollout.mode == "derivative" and config.rollout.derivative_scale > 0  # resolved from the data
    assert main(["rollout", str(run), "--dt", "0.025", "--plots", str(tmp_path / "figures")]) == 0
    result = json.loads((run / "rollout.json").read_text())
    assert result["times"] == pytest.approx([0.05 * i for i in range(2, 9)]) and len(result["l2_per_time"]) == 7
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["error.png", "fields.png", "spectra.png"]
    assert main(["rollout", str(run), "--dt", "0.03"]) == 2
    assert "must divide the stored step" in capsys.readouterr().err


def test_unrolled_pushforward_training_with_noise_and_curriculum_runs_from_the_command_line(store, tmp_path):
    run = tmp_path / "run"
    options = ["--epochs", "2", "--target-steps", "3", "--unroll", "3", "--pushforward", "--noise", "0.01", "--teacher-forcing-epochs", "2"]
    assert train(store, run, *options) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["validation_l2"]) for r in records)
    assert train(store, tmp_path / "bad", "--target-steps", "1", "--unroll", "2") == 2


@pytest.mark.parametrize(
    "values, message",
    [
        ({"trainer": {"epochs": "3"}}, r"trainer.epochs must be an integer; got '3' \(str\)"),
        ({"trainer": {"epochs": 3.0}}, r"trainer.epochs must be an integer; got 3.0"),
        ({"trainer": {"gradient_clip": True}}, r"trainer.gradient_clip must be a number; got True \(bool\)"),
        ({"trainer": {"amp": 1}}, r"trainer.amp must be true or false; got 1"),
        ({"data": {"store": 5}}, r"data.store must be a string; got 5"),
        ({"model": {"settings": [1]}}, r"model.settings must be a table of keys and values; got \[1\]"),
        ({"model": {"settings": {"width": "eight"}}}, r"model.settings.width must be an integer; got 'eight'"),
        ({"model": {"name": "ffno", "settings": {"share_weights": 1}}}, r"model.settings.share_weights must be true or false; got 1"),
        ({"model": {"name": "unet"}}, r"model.name: unknown model 'unet'"),
        ({"rollout": 3}, r"\[rollout\] must be a table of keys; got 3"),
        ({"seed": "1"}, r"seed must be an integer; got '1'"),
        ({"data": {"validation_fraction": 1.0}}, r"data.validation_fraction must be in \(0, 1\); got 1.0"),
        ({"trainer": {"weight_decay": -1}}, r"trainer.weight_decay must be non-negative and finite; got -1.0"),
        ({"online": {"watermark": 5000}}, r"online.watermark must be in \[1, capacity=2048\]"),
        ({"online": {"tee": 3}}, r"online.tee must be a string; got 3 \(int\)"),
        ({"trainer": {"schedule_epochs": 2.5}}, r"trainer.schedule_epochs must be an integer; got 2.5 \(float\)"),
        ({"correction": {"scale": "auto"}}, r"correction.scale must be a number; got 'auto' \(str\)"),
        ({"rollout": {"noise": float("nan")}}, r"rollout.noise must be non-negative and finite; got nan"),
    ],
)
def test_config_values_are_checked_against_their_field_types_and_ranges(values, message):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.from_dict(values)


def test_config_accepts_an_integer_where_a_number_is_expected_and_stores_a_float():
    config = ExperimentConfig.from_dict(
        {"trainer": {"learning_rate": 1, "gradient_clip": 0}, "model": {"name": "tfno", "settings": {"rank": 1}}}
    )
    assert type(config.trainer.learning_rate) is float and config.trainer.learning_rate == 1.0
    assert type(config.trainer.gradient_clip) is float


def test_config_file_errors_name_the_file_and_yaml_reads_exponents_as_numbers(tmp_path):
    (tmp_path / "exponent.yaml").write_text("trainer: {learning_rate: 2e-3, weight_decay: 1E-5}\n")
    assert load_config(tmp_path / "exponent.yaml").trainer.learning_rate == 2e-3  # PyYAML alone reads '2e-3' as a string
    (tmp_path / "typed.toml").write_text("[trainer]\nepochs = true\n")
    with pytest.raises(ValueError, match=r"typed.toml: trainer.epochs must be an integer; got True"):
        load_config(tmp_path / "typed.toml")
    (tmp_path / "broken.yaml").write_text("trainer: {epochs: 3\n")
    with pytest.raises(ValueError, match=r"broken.yaml: not valid YAML: .*\(line 2, column 1\)$"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "range.toml").write_text("[data]\nbatch_size = 0\n")
    with pytest.raises(ValueError, match=r"range.toml: data.batch_size must be >= 1; got 0"):
        load_config(tmp_path / "range.toml")


EARLIER_CONFIG = """
seed = 0

[data]
store = ""

[trainer]
schedule_epochs = 0

[rollout]
derivative_scale = 0.0

[online]
recipe = ""
watermark = 0
members = 0
batch_size = 0
scheduler = ""
solver_device = ""
validation_store = ""
tee = ""

[correction]
solver_dt = 0.0
scale = 0.0
"""
"""The "not set" values a config.toml of an earlier pdekit version holds."""


def test_a_config_file_of_an_earlier_version_reads_its_not_set_values_as_none(tmp_path):
    (tmp_path / "earlier.toml").write_text(EARLIER_CONFIG)
    loaded = load_config(tmp_path / "earlier.toml")
    assert loaded == ExperimentConfig()  # every one is today's None, the default
    save_config(loaded, tmp_path / "config.toml")
    written = tomllib.loads((tmp_path / "config.toml").read_text())
    assert "store" not in written["data"] and "tee" not in written["online"] and "scale" not in written["correction"]
    assert load_config(tmp_path / "config.toml") == loaded
    assert ExperimentConfig.from_dict({"online": {"tee": None}, "trainer": {"schedule_epochs": None}}) == ExperimentConfig()


def test_data_store_unset_is_none_an_earlier_files_empty_store_reads_as_none_and_train_asks_for_one(tmp_path):
    assert DataConfig().store is None
    earlier = ExperimentConfig.from_dict({"data": {"store": ""}})
    assert earlier.data.store is None
    assert DataConfig(store="ensemble.zarr").store == "ensemble.zarr"
    with pytest.raises(ValueError, match=r"^data.store is not set: name the Zarr ensemble"):
        train_run(earlier, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_build_model_checks_setting_types_as_the_config_does():
    from pdekit.models import build_model

    with pytest.raises(ValueError, match=r"model.settings.width must be an integer; got 8.5"):
        build_model("fno", 1, 1, width=8.5)


@pytest.mark.parametrize(("mode", "section", "other"), [("correction", "correction", "rollout"), ("state", "rollout", "correction")])
def test_unroll_and_pushforward_options_set_the_section_of_the_mode(mode, section, other):
    import argparse

    from pdekit.cli import add_train_parser, experiment_from_arguments

    parser = add_train_parser(argparse.ArgumentParser().add_subparsers())
    args = parser.parse_args(["--out", "r", "--mode", mode, "--unroll", "3", "--target-steps", "3", "--pushforward"])
    config = experiment_from_arguments(args)
    assert getattr(config, section).unroll == 3 and getattr(config, section).pushforward
    untouched = {"correction": (4, False), "rollout": (1, False)}[other]  # the sections' defaults
    assert (getattr(config, other).unroll, getattr(config, other).pushforward) == untouched
