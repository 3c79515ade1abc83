"""Checkpoints written atomically and read back with ``weights_only=True``, and checked before they are used."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from pdekit.atomic import atomic_file
from pdekit.devices import Device


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Writes ``state`` to ``path`` so that a reader sees the old file or the new one, never a torn one.

    The state goes to a temporary file in the same directory, is flushed to disk, and replaces
    ``path`` by one ``os.replace`` (atomic on POSIX and Windows).

    Args:
        path: the checkpoint file.
        state: what ``torch.save`` writes (e.g. ``Trainer.state_dict()``).
    """
    with atomic_file(path, "wb") as file:
        torch.save(state, file)


def load_checkpoint(path: str | os.PathLike, map_location: Device | None = None, *, required: Iterable[str] = ()) -> dict:
    """Returns the state saved at ``path``, loaded with ``weights_only=True`` (no code runs on load).

    The state must be a dict holding every key in ``required`` (e.g. the Trainer's ``"model"``,
    ``"optimizer"``, ...); anything else is a one-line ValueError naming the file, so a stray or
    foreign ``.pt`` file never surfaces later as an AttributeError or KeyError.

    Args:
        path: the checkpoint file.
        map_location: the device the tensors are loaded onto (``None``: where they were saved).
        required: keys the state must hold.

    Returns:
        The saved dict.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        ValueError: if the file is not a readable checkpoint, not a dict, or lacks a ``required`` key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable pdekit checkpoint: {error}") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a pdekit checkpoint (a dict of named states)")
    missing = [key for key in required if key not in state]
    if missing:
        raise ValueError(f"{path} is not a pdekit training checkpoint: it lacks {missing} (it holds {sorted(map(str, state))[:12]})")
    return state


DATA_STATE = "data_state"


def data_state_path(run_dir: str | os.PathLike, epoch: int, rank: int) -> Path:
    """Returns where process ``rank`` saves its training data's state after ``epoch`` epochs: ``run_dir/data_state/epoch-E-rank-R.pt``.

    The Trainer writes it (``Trainer.fit``, for a ``train`` with a ``state_dict``) before the
    checkpoint of the same epoch; whoever builds the data reads it back to resume.
    """
    return Path(run_dir) / DATA_STATE / f"epoch-{epoch:06d}-rank-{rank}.pt"


def data_state_files(run_dir: str | os.PathLike) -> list[tuple[int, int, Path]]:
    """Returns ``(epoch, rank, path)`` of every data-state file in ``run_dir`` (named by ``data_state_path``), sorted."""
    found = []
    for path in (Path(run_dir) / DATA_STATE).glob("epoch-*-rank-*.pt"):
        match = _DATA_STATE_NAME.fullmatch(path.name)
        if match:
            found.append((int(match[1]), int(match[2]), path))
    return sorted(found)


_DATA_STATE_NAME = re.compile(r"epoch-(\d+)-rank-(\d+)\.pt")


def weight_differences(model: nn.Module, weights) -> list[str]:
    """Returns why ``weights`` (a state dict) would not load into ``model``: missing, unexpected and differently shaped tensors; empty if it
    would."""
    if not isinstance(weights, Mapping):
        return [f"the weights are a {type(weights).__name__}, not a state dict"]
    expected = model.state_dict()
    problems = [
        f"{name} is {list(weights[name].shape)} in the checkpoint, {list(tensor.shape)} in the model"
        for name, tensor in expected.items()
        if name in weights and tuple(getattr(weights[name], "shape", ())) != tuple(tensor.shape)
    ]
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    if missing:
        problems.append(f"{len(missing)} tensors missing from the checkpoint (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} tensors the model lacks (e.g. {unexpected[0]})")
    return problems
