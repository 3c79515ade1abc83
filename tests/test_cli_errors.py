"""Bad input on every command is one line on stderr naming the option and the value, and exit code 2, never a traceback."""

import subprocess
import sys

import pytest
import torch
import zarr

from pdekit.cli import main

FILES = {
    "quoted_epochs.toml": '[trainer]\nepochs = "3"\n',
    "broken.toml": "[trainer\nepochs = 3\n",
    "broken.yaml": "trainer: {epochs: [\n",
    "file.txt": "not a directory\n",
}

# (command line, fragment of the message); {tmp} is a folder holding FILES and a plain Zarr group plain.zarr.
BAD_INPUT = [
    # train: --set and configuration files, checked by field type in ExperimentConfig.from_dict
    ("train --out {tmp}/run --set nosection.key=3", "unknown section 'nosection'"),
    ("train --out {tmp}/run --set trainer.weight_decay=abc", "trainer.weight_decay must be a number; got 'abc'"),
    ('train --out {tmp}/run --set model.width="eight"', "model.settings.width must be an integer; got 'eight'"),
    ("train --out {tmp}/run --set trainer.gradient_clip=true", "trainer.gradient_clip must be a number; got True (bool)"),
    ("train --out {tmp}/run --config {tmp}/quoted_epochs.toml", "quoted_epochs.toml: trainer.epochs must be an integer; got '3'"),
    ("train --out {tmp}/run --config {tmp}/broken.toml", "broken.toml: not valid TOML"),
    ("train --out {tmp}/run --config {tmp}/broken.yaml", "broken.yaml: not valid YAML"),
    ("train --out {tmp}/run --config {tmp}/missing.toml", "no configuration file"),
    ("train --out {tmp}/run --epochs 0", "argument --epochs: expected an integer >= 1; got '0'"),
    ("online --recipe heat_2d --out {tmp}/run --capacity 0", "argument --capacity: expected an integer >= 1; got '0'"),
    # evaluate and rollout: no silent defaults in place of bad values
    ("evaluate {tmp}/run --device nosuch", "argument --device: expected a torch device such as cpu, cuda or cuda:0; got 'nosuch'"),
    ("rollout {tmp}/run --steps -3", "argument --steps: expected an integer >= 1; got '-3'"),
    ("rollout {tmp}/run --steps 0", "argument --steps: expected an integer >= 1; got '0'"),
    ("rollout {tmp}/run --dt 0", "argument --dt: expected a positive number; got '0'"),
    ("rollout {tmp}/run --start-time -5", "argument --start-time: expected a finite number >= 0; got '-5'"),
    ("rollout {tmp}/run --plots {tmp}/file.txt", "--plots {tmp}/file.txt exists and is not a directory"),
    # pinn
    ("pinn convection --points 0", "argument --points: expected an integer >= 1; got '0'"),
    ("pinn convection --depth 0", "argument --depth: expected an integer >= 1; got '0'"),
    ("pinn convection --lbfgs -1", "argument --lbfgs: expected an integer >= 0; got '-1'"),
    ("pinn convection --iterations 0", "argument --iterations: expected an integer >= 1; got '0'"),
    ("pinn convection --width 0", "argument --width: expected an integer >= 1; got '0'"),
    ("pinn convection --seeds 0", "argument --seeds: expected an integer >= 1; got '0'"),
    ("pinn convection --seed 9223372036854775807 --seeds 2", "--seed and --seeds: every seed must lie in [-2**63, 2**63)"),
    ("pinn convection --learning-rate -1", "argument --learning-rate: expected a positive number; got '-1'"),
    ("pinn convection --beta nan", "argument --beta: expected a finite number; got 'nan'"),
    ("pinn reaction --beta 3", "--beta applies to the convection problem, not reaction"),
    ("pinn convection --iterations 1 --out {tmp}/file.txt", "--out {tmp}/file.txt exists and is not a directory"),
    # quickstart: QuickstartConfig's own checks, reported by main
    ("quickstart --out {tmp}/qs --horizon 0", "quickstart horizon must be a finite multiple of the stored step 0.5"),
    ("quickstart --out {tmp}/qs --epochs 0", "quickstart epochs must be >= 1; got 0"),
    # generate, info, upgrade
    ("generate heat_2d --out {tmp}/x.zarr --members 0", "argument --members: expected an integer >= 1; got '0'"),
    ("generate heat_2d --out {tmp}/x.zarr --members -3", "argument --members: expected an integer >= 1; got '-3'"),
    ("generate heat_2d --out {tmp}/x.zarr --batch-size 0", "argument --batch-size: expected an integer >= 1; got '0'"),
    ("generate kolmogorov_flow --out {tmp}/x.zarr --reynolds 100 200 300", "reynolds must be a positive number or a range (low, high)"),
    ("generate kolmogorov_flow --out {tmp}/x.zarr --reynolds 900 100", "reynolds must be a positive number or a range (low, high)"),
    ("generate kolmogorov_flow --out {tmp}/x.zarr --reynolds 0", "argument --reynolds: expected a positive number; got '0'"),
    ("generate heat_2d --out {tmp}/x.zarr --reynolds 100", "--reynolds applies to kolmogorov_flow, not heat_2d"),
    ("info {tmp}/plain.zarr", "is a Zarr group but not a pdekit ensemble"),
    ("info {tmp}/missing", "{tmp}/missing: no such file or directory"),
    ("upgrade {tmp}/missing", "does not exist"),
    ("nosuch", "invalid choice: 'nosuch'"),
    # every --device (CUDA is hidden below, so 'cuda' is unavailable on any machine)
    ("generate heat_2d --out {tmp}/x.zarr --device cuda", "argument --device: 'cuda' is not available on this machine"),
    ("train --out {tmp}/run --device cuda", "argument --device: 'cuda' is not available on this machine"),
    ("online --recipe heat_2d --out {tmp}/run --device cuda:1", "argument --device: 'cuda:1' is not available on this machine"),
    ("online --recipe heat_2d --out {tmp}/run --solver-device cuda", "argument --solver-device: 'cuda' is not available on this machine"),
    ("evaluate {tmp}/run --device cuda", "argument --device: 'cuda' is not available on this machine"),
    ("rollout {tmp}/run --device cuda", "argument --device: 'cuda' is not available on this machine"),
    ("quickstart --out {tmp}/qs --device cuda", "argument --device: 'cuda' is not available on this machine"),
    ("frontier heat_2d --reference-shape 16x16 --horizon 0.1 --device cuda", "argument --device: 'cuda' is not available on this machine"),
    # frontier: refused before the reference solve, naming the option
    ("frontier heat_2d --reference-shape 16x16 --horizon inf", "argument --horizon: expected a positive number; got 'inf'"),
    ("frontier heat_2d --reference-shape 16x16 --horizon 0.1 --dts -1", "argument --dts: expected a positive number; got '-1'"),
    ("frontier heat_2d --reference-shape 16x16 --horizon 0.1 --repeats 0", "argument --repeats: expected an integer >= 1; got '0'"),
    (
        "frontier heat_2d --reference-shape 16x16 --horizon 0.1 --correlation-threshold 1",
        "argument --correlation-threshold: expected a number between -1 and 1 (exclusive); got '1'",
    ),
    (
        "frontier heat_2d --reference-shape 16x16 --horizon 0.1 --no-reference-route",
        "--no-reference-route leaves no solver to compare with",
    ),
    (
        "frontier heat_2d --reference-shape 16x16 --horizon 0.1 --out {tmp}/plain.zarr/zarr.json/x",
        "--out {tmp}/plain.zarr/zarr.json/x is not",
    ),
]

# A few through the installed entry point (python -m pdekit): the real exit code and stream, no CUDA hidden.
THROUGH_A_PROCESS = {"rollout {tmp}/run --steps -3", "train --out {tmp}/run --set trainer.weight_decay=abc"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("bad-input")
    for name, text in FILES.items():
        (path / name).write_text(text)
    zarr.open_group(path / "plain.zarr", mode="w").attrs["title"] = "not a pdekit store"
    return path


@pytest.mark.parametrize("line, fragment", BAD_INPUT, ids=[line for line, _ in BAD_INPUT])
def test_bad_input_is_one_line_naming_it_with_exit_code_2(line, fragment, folder, capsys, monkeypatch):
    argv = [part.replace("{tmp}", str(folder)) for part in line.split()]
    fragment = fragment.replace("{tmp}", str(folder))
    if line in THROUGH_A_PROCESS:
        result = subprocess.run([sys.executable, "-m", "pdekit", *argv], capture_output=True, text=True, timeout=120)
        code, err = result.returncode, result.stderr
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's errors
            code = exit_.code
        err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (folder / "run").exists() and not (folder / "qs").exists() and not (folder / "x.zarr").exists()


def test_main_reports_a_held_lock_in_one_line_and_lets_bugs_keep_their_traceback(capsys, monkeypatch):
    from pdekit.cli import reported
    from pdekit.data.lock import LockedError

    def locked():
        raise LockedError("run is locked by pdekit train (pid 12)\nsince 09:00")

    assert reported("train", locked) == 2
    assert capsys.readouterr().err == "pdekit train: run is locked by pdekit train (pid 12) since 09:00\n"
    with pytest.raises(KeyError):
        reported("train", lambda: {}["bug"])
    monkeypatch.setenv("PDEKIT_TRACEBACK", "1")
    with pytest.raises(LockedError):
        reported("train", locked)
