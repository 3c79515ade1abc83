"""The quickstart, the examples and every command's --help run as a new user would run them."""

import json
import math
import multiprocessing
import re
import runpy
from pathlib import Path

import pytest

from pdekit.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted(next(a for a in build_parser()._actions if a.dest == "command").choices)  # walks the parser, not a hand-kept list


def test_the_parser_has_every_documented_command():
    assert {"generate", "validate", "upgrade", "train", "online", "evaluate", "rollout", "info", "quickstart", "pinn"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage: pdekit" in capsys.readouterr().out


def test_quickstart_at_its_smallest_size_writes_the_results_and_figures(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--members", "5", "--epochs", "1", "--horizon", "1.5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    rollout = re.search(r"rollout error t = 1.5 +relative L2 ([0-9.]+)", out)
    correlation = re.search(r"correlation time +([0-9.]+)", out)
    assert rollout and correlation, out
    assert 0 < float(rollout[1]) < 2 and 0 <= float(correlation[1]) <= 1.5  # one epoch: a finite error, a time within the horizon
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["error.png", "fields.png", "spectra.png"]
    assert (tmp_path / "fno" / "config.toml").exists()


def test_quickstart_learns_vorticity_and_velocity_together(tmp_path, capsys):
    assert (
        main(
            [
                "quickstart",
                "--out",
                str(tmp_path),
                "--members",
                "4",
                "--epochs",
                "1",
                "--horizon",
                "1",
                "--fields",
                "vorticity",
                "velocity",
                "--no-progress",
            ]
        )
        == 0
    )
    one_step = re.search(r"one-step error +relative L2 ([0-9.]+)", capsys.readouterr().out)
    assert one_step and 0 < float(one_step[1]) < 2
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["error.png", "fields_velocity_x.png", "fields_velocity_y.png", "fields_vorticity.png", "spectra.png"]


def test_quickstart_refuses_a_zero_size_before_generating(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--members", "0"]) == 2
    assert "members must be >= 1" in capsys.readouterr().err and not (tmp_path / "navier_stokes.zarr").exists()


def test_pinn_command_trains_and_writes_history_and_population_figure(tmp_path, capsys):
    assert (
        main(["pinn", "convection", "--beta", "1", "--iterations", "30", "--points", "100", "--out", str(tmp_path), "--no-progress"]) == 0
    )
    assert (tmp_path / "population.png").exists()
    record = json.loads((tmp_path / "pinn.json").read_text())
    assert len(record["history"]) >= 1 and 0 < record["relative_l2"] < 2  # 30 iterations: finite, of order one
    assert f"relative L2 {record['relative_l2']:.4g}" in capsys.readouterr().out  # the printed figure is the recorded one


def test_pinn_command_trains_seeds_as_an_ensemble_and_reports_their_spread(tmp_path, capsys):
    argv = ["pinn", "convection", "--beta", "1", "--iterations", "5", "--points", "50", "--no-progress", "--out"]
    assert main([*argv, str(tmp_path / "two"), "--seed", "3", "--seeds", "2"]) == 0
    record = json.loads((tmp_path / "two" / "pinn.json").read_text())
    assert record["seeds"] == [3, 4] and len(record["history_per_seed"]) == 2
    assert record["relative_l2_mean"] == pytest.approx(sum(record["relative_l2_per_seed"]) / 2)
    assert f"relative L2 {record['relative_l2_mean']:.4g} ± " in capsys.readouterr().out
    assert main([*argv, str(tmp_path / "one"), "--seed", "4"]) == 0  # seed 4 alone: the ensemble's second member
    alone = json.loads((tmp_path / "one" / "pinn.json").read_text())["relative_l2"]
    assert alone == pytest.approx(record["relative_l2_per_seed"][1], rel=1e-3)


def test_pinn_command_takes_the_condition_points_on_grids_when_asked(tmp_path):
    argv = ["pinn", "convection", "--beta", "1", "--iterations", "5", "--points", "50", "--no-progress", "--out"]
    records = {}
    for layout in ("uniform", "grid"):
        assert main([*argv, str(tmp_path / layout), "--conditions", layout]) == 0
        records[layout] = json.loads((tmp_path / layout / "pinn.json").read_text())
    assert records["grid"]["conditions"] == "grid" and records["uniform"]["conditions"] == "uniform"
    assert records["grid"]["relative_l2"] != records["uniform"]["relative_l2"]  # the same seed trained on other points


def example(script: str):
    """Returns the ``main(argv)`` of ``examples/<script>``, loaded as ``python examples/<script>`` would load it, but not run."""
    return runpy.run_path(str(ROOT / "examples" / script))["main"]


# The examples run in this process (a new interpreter would cost more than most of them), each at a
# size that finishes in seconds; each test checks the figures the example computes and prints.
def test_hybrid_solver_example_stays_near_the_solver_and_takes_surrogate_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error, fallbacks = example("hybrid_solver_in_your_loop.py")(["--steps", "100"])
    # 8 members x 100 steps, 4 of every 5 by the surrogate: 640 member-steps it may take.
    assert 0 < fallbacks < 640  # the residual guard let the surrogate take some steps and refused others
    assert error < 0.1  # and kept the loop within 10% of the solver's trajectory


def test_pinn_example_learns_the_convection_solution_with_both_samplers(tmp_path):
    errors = example("pinn_with_r3.py")(["--beta", "1", "--iterations", "200", "--out", str(tmp_path)])
    assert set(errors) == {"uniform_fixed", "r3"}
    assert all(e < 0.8 for e in errors.values()), errors  # a network that predicts 0 everywhere scores 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["population_r3.png", "population_uniform_fixed.png"]


def test_train_operator_example_reports_the_validation_error_that_evaluate_measures(tmp_path):
    arguments = ["--members", "6", "--epochs", "1", "--horizon", "1.5", "--model", "ffno", "--out", str(tmp_path)]
    validation, evaluation = example("train_operator_from_zarr.py")(arguments)
    # The Trainer's last validation and evaluate() measure the same members in the same units.
    assert evaluation.l2 == pytest.approx(validation, rel=1e-4)
    assert 0 < evaluation.l2 < 1 and evaluation.times == [1.0, 1.5] and evaluation.members == 2
    assert evaluation.l2 == pytest.approx(sum(evaluation.l2_per_time) / 2, rel=1e-6)


def test_generate_on_dask_example_completes_every_member_into_a_valid_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary, report = example("generate_on_dask.py")(["--members", "4", "--workers", "1"])
    assert (summary.members, summary.completed, summary.failed) == (4, 4, 0)
    assert report.ok and not report.notes
    assert not multiprocessing.active_children()  # the example's LocalCluster took its worker processes with it


def test_online_training_example_feeds_every_solved_members_windows_and_rolls_out(tmp_path):
    arguments = ["--epochs", "1", "--steps-per-epoch", "3", "--validation-members", "2", "--horizon", "1.5", "--watermark", "24"]
    arguments += ["--out", str(tmp_path / "run")]
    history, rolled = example("online_training.py")(arguments)
    (epoch,) = history
    # Stored times 0, 0.5, 1, 1.5 give each member 2 windows of 2 input states and 1 target.
    assert epoch["members_solved"] > 0 and epoch["samples_admitted"] == 2 * epoch["members_solved"]
    assert 0 < epoch["unique_samples_drawn"] <= 3 * 8 <= epoch["samples_admitted"]  # 3 batches of 8, drawn from what was admitted
    assert rolled.members == 2 and rolled.times == [1.0, 1.5]
    assert 0 < epoch["validation_l2"] < 1.1 and all(0 < e < 1.1 for e in rolled.l2_per_time)  # an untrained model scores about 1


def test_compare_operators_example_trains_and_scores_all_five(tmp_path):
    rows = example("compare_operators.py")(["--members", "4", "--epochs", "1", "--horizon", "1.5", "--out", str(tmp_path)])
    assert [r[0] for r in rows] == ["fno", "tfno", "ffno", "galerkin", "factformer"]
    for name, weights, seconds, one_step, final in rows:
        assert weights > 0 and seconds > 0, name
        # one epoch on 3 members: about the error of an untrained model (1), finite and not far above it
        assert 0 < one_step < 1.1 and 0 < final < 1.1, (name, one_step, final)


def test_derivative_rollout_example_steps_at_half_the_training_dt_alike(tmp_path):
    rows = example("derivative_vs_state_rollouts.py")(["--members", "4", "--epochs", "1", "--out", str(tmp_path)])
    assert [(mode, step) for mode, step, _ in rows] == [("state", "training dt"), ("derivative", "training dt"), ("derivative", "dt / 2")]
    (_, _, state), (_, _, at_dt), (_, _, at_half) = rows
    assert at_half.dt == pytest.approx(at_dt.dt / 2) and at_half.times == at_dt.times == state.times
    # The derivative surrogate is integrated by RK4: halving its step changes the rollout by far less than its error.
    mean = lambda result: sum(result.l2_per_time) / len(result.l2_per_time)  # noqa: E731
    assert abs(mean(at_half) - mean(at_dt)) < 0.05 * mean(at_dt)
    assert all(math.isfinite(mean(r)) for r in (state, at_dt, at_half))
