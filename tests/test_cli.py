"""The ``pdekit`` command as users expect one: --version, -q/-v, help for every option, logs without progress-bar frames."""

import argparse
import logging
import os
import subprocess
import sys
import warnings

import pytest

import pdekit
from pdekit.cli import build_parser, main
from pdekit.progress import progress_bar


def commands() -> dict[str, argparse.ArgumentParser]:
    """Returns every subcommand's parser, found by walking the ``pdekit`` parser."""
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def options():
    """Yields ``(command, action)`` for every argument of every command but ``--help``."""
    for name, parser in commands().items():
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction):
                yield name, action


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"pdekit {pdekit.__version__}"


@pytest.mark.parametrize("command", sorted(commands()))
def test_every_command_takes_quiet_and_verbose(command):
    flags = {flag for action in commands()[command]._actions for flag in action.option_strings}
    assert {"-q", "--quiet", "-v", "--verbose"} <= flags


def test_every_option_has_help_and_shows_its_default():
    missing = [f"{name} {action.option_strings or action.dest}" for name, action in options() if not action.help]
    assert missing == []
    for name, action in options():
        default = action.default
        counts = isinstance(action, argparse._CountAction)  # -v: its 0 says nothing
        if action.option_strings and not counts and default not in (None, False, [], argparse.SUPPRESS):
            shown = commands()[name].formatter_class("pdekit")._get_help_string(action) % {"default": default}
            assert "default" in shown, (name, action.option_strings, shown)


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert _exit_code(["validate", "store.zarr", "-q", "-v"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def test_progress_bar_is_off_without_a_terminal_and_under_tqdm_disable(monkeypatch):
    # pytest captures standard error, so it is not a terminal here: tqdm's disable=None turns the bar off
    assert progress_bar(range(3)).disable
    assert progress_bar(range(3), enabled=False).disable

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            pass

        def flush(self):
            pass

    assert not progress_bar(range(3), file=Terminal()).disable
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress_bar(range(3), file=Terminal()).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not progress_bar(range(3), file=Terminal()).disable


def generate_with_log(tmp_path, *flags: str) -> bytes:
    """Runs ``pdekit generate`` on a tiny heat ensemble with standard error sent to a file, as ``2> log`` does; returns that log."""
    log = tmp_path / "log"
    store = tmp_path / f"heat{len(flags)}.zarr"
    argv = ["generate", "heat_2d", "--out", str(store), "--members", "3", "--batch-size", "2", "--shape", "16", "16"]
    argv += ["--times", "0:0.2:0.1", "--device", "cpu", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TQDM_DISABLE", None)
    with open(log, "wb") as stderr:
        subprocess.run([sys.executable, "-m", "pdekit.cli", *argv], stderr=stderr, stdout=subprocess.DEVNULL, env=env, check=True)
    return log.read_bytes()


def test_generate_into_a_log_file_writes_progress_lines_and_no_carriage_returns(tmp_path):
    default, quiet = generate_with_log(tmp_path), generate_with_log(tmp_path, "-q")
    assert b"\r" not in default and quiet == b""
    lines = default.decode().splitlines()
    assert len(lines) == 2 and all(line.startswith("pdekit: heat_2d: batch ") for line in lines), lines  # one line per batch of 2


def test_quiet_and_verbose_may_come_before_the_command(capsys):
    assert _exit_code(["-q", "validate", "missing.zarr"]) == 1
    assert _exit_code(["-v", "validate", "missing.zarr"]) == 1


def test_a_command_leaves_logging_and_warnings_as_it_found_them():
    log = logging.getLogger("pdekit")
    handlers, level, filters = log.handlers[:], log.level, warnings.filters[:]
    for flags in ([], ["-q"], ["-v"]):
        _exit_code(["validate", "missing.zarr", *flags])
    assert log.handlers == handlers and log.level == level and warnings.filters == filters
