"""The quickstart, the examples and every command's --help run as a new user would run them."""

import subprocess
import sys
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
    assert "rollout error t = 1.5" in out and "correlation time" in out
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
    assert "relative L2" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["error.png", "fields_velocity_x.png", "fields_velocity_y.png", "fields_vorticity.png", "spectra.png"]


def test_quickstart_refuses_a_zero_size_before_generating(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--members", "0"]) == 2
    assert "members must be >= 1" in capsys.readouterr().err and not (tmp_path / "navier_stokes.zarr").exists()


def test_hybrid_solver_example_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "hybrid_solver_in_your_loop.py"), "--steps", "20"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "hybrid vs solver after 100 steps" in result.stdout


def test_pinn_command_trains_and_writes_history_and_population_figure(tmp_path, capsys):
    assert (
        main(["pinn", "convection", "--beta", "1", "--iterations", "30", "--points", "100", "--out", str(tmp_path), "--no-progress"]) == 0
    )
    assert (tmp_path / "pinn.json").exists() and (tmp_path / "population.png").exists()
    assert "relative L2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "script, arguments, expected",
    [
        ("train_operator_from_zarr.py", ["--members", "6", "--epochs", "1", "--horizon", "1.5", "--model", "ffno"], "relative L2"),
        ("pinn_with_r3.py", ["--beta", "1", "--iterations", "20"], "r3"),
        ("generate_on_dask.py", ["--members", "4", "--workers", "1"], "valid"),
    ],
)
def test_example_runs_at_its_smallest_size(script, arguments, expected, tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *arguments], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected in result.stdout


def test_online_training_example_runs(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "examples" / "online_training.py"),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "3",
        "--validation-members",
        "2",
        "--horizon",
        "1.5",
        "--out",
        str(tmp_path / "run"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "members solved" in result.stdout and "rollout of 2 members" in result.stdout


def test_compare_operators_example_runs(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "examples" / "compare_operators.py"),
        "--members",
        "4",
        "--epochs",
        "1",
        "--horizon",
        "1.5",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in ("fno", "tfno", "ffno", "galerkin", "factformer")) and "one-step L2" in result.stdout


def test_derivative_vs_state_rollouts_example_runs(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "examples" / "derivative_vs_state_rollouts.py"),
        "--members",
        "4",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "dt / 2" in result.stdout and "correlation time" in result.stdout
