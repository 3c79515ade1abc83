"""The argparse types every ``pdekit`` command shares: numbers in range, a device that exists, an output directory that is writable.

Each refuses bad input with a message argparse turns into one line and exit code 2, naming the
option; ``writable_directory`` is called before a long computation so a bad path loses nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0; got {text!r}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -float("inf") < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def device_type(text: str) -> str:
    """An argparse type: a torch device that exists on this machine (``cpu``, ``cuda``, ``cuda:1``, ``mps``, ...); returns its name."""
    import torch  # imported here: the parser is built without torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda or cuda:0; got {text!r}") from None
    if device.type == "cpu":
        return str(device)
    if device.type == "mps":
        count = 1 if torch.backends.mps.is_available() else 0
    else:
        backend: Any = getattr(torch, device.type, None)
        available = callable(getattr(backend, "is_available", None)) and backend.is_available()
        count = backend.device_count() if available and callable(getattr(backend, "device_count", None)) else int(bool(available))
    if count == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not available on this machine (no {device.type} device); expected cpu or an available device"
        )
    if device.index is not None and device.index >= count:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not available on this machine ({count} {device.type} device{'s' if count > 1 else ''}: indices 0 to {count - 1})"
        )
    return str(device)


def writable_directory(path: str | Path, option: str) -> Path:
    """Returns ``path`` after making it a directory (if needed) and writing a file into it; ValueError naming ``option`` otherwise.

    Checked before a long computation, so that a bad output path does not lose a finished run.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ValueError(f"{option} {path} is not a writable directory ({error.strerror or error})") from None
    return path
