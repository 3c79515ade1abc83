"""The argparse types every ``pdekit`` command shares: numbers in range, a device that exists, an output directory that is writable.

Each refuses bad input with a message argparse turns into one line and exit code 2, naming the
option; ``writable_directory`` is called before a long computation so a bad path loses nothing.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _number(text: str, kind: type, accept: Callable[[Any], bool], expected: str) -> Any:
    """Returns ``kind(text)`` if it parses and ``accept`` takes it; otherwise the argparse error naming ``expected``."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    return _number(text, float, lambda v: 0 < v < math.inf, "a positive number")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: 0 <= v < math.inf, "a finite number >= 0")


def correlation_float(text: str) -> float:
    """An argparse type: a correlation threshold, a number strictly between -1 and 1."""
    return _number(text, float, lambda v: -1 < v < 1, "a number between -1 and 1 (exclusive)")


def finite_float(text: str) -> float:
    """An argparse type: a finite number."""
    return _number(text, float, math.isfinite, "a finite number")


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
