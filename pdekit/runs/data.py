"""What a run trains and validates on: the store's train/validation split, its normalisation, its windows."""

from __future__ import annotations

import numpy as np

from pdekit.data import FieldStatistics, StoreError, Windows, compute_statistics, load_statistics, open_store
from pdekit.data.store import member_status
from pdekit.runs.config import DataConfig, ExperimentConfig


def split_members(store, validation_fraction: float) -> tuple[list[int], list[int]]:
    """Returns ``(training members, validation members)``: the last ``validation_fraction`` of the completed ones are held out.

    Args:
        store: the Zarr ensemble: a local path or an fsspec URL.
        validation_fraction: the share held out, in (0, 1); at least one member is.

    Returns:
        The training and the validation members' indices, increasing.

    Raises:
        ValueError: the store has fewer than 2 completed members, or ``validation_fraction`` is not in (0, 1).
    """
    completed, _ = member_status(open_store(store))
    members = np.flatnonzero(completed).tolist()
    if len(members) < 2:
        raise ValueError(f"{store}: {len(members)} completed members; training and validation need at least 2")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"data.validation_fraction must be in (0, 1); got {validation_fraction}")
    held_out = max(1, round(validation_fraction * len(members)))
    return members[:-held_out], members[-held_out:]


def validation_members(config: ExperimentConfig) -> list[int]:
    """Returns the members of ``config.data.store`` that a run validates and is evaluated on.

    The last ``data.validation_fraction`` of the completed members, except for the validation set
    ``pdekit online`` generated itself (``online.recipe`` set, ``online.validation_store`` None): all of it.

    Args:
        config: the run's configuration.

    Returns:
        The members' indices, increasing.
    """
    if config.online.recipe is not None and config.online.validation_store is None:
        completed, _ = member_status(open_store(config.data.store))
        return np.flatnonzero(completed).tolist()
    return split_members(config.data.store, config.data.validation_fraction)[1]


def statistics_of(config: DataConfig, training_members: list[int]) -> FieldStatistics | None:
    """Returns the statistics a new run normalises with; ``None`` without normalisation.

    Those saved in the store by an explicit ``compute_statistics(store)`` when there are, else the
    statistics of ``training_members`` alone (held-out members never inform them), computed without
    writing into the store: a run saves what this returns in its ``normalization.json``, and
    evaluation and resumes use that. Every DDP process computes the same numbers; none writes.

    Args:
        config: the run's data section.
        training_members: the members the statistics are computed over when the store has none saved.

    Returns:
        Per-channel statistics, or None when ``config.normalize`` is off.
    """
    if not config.normalize:
        return None
    try:
        return load_statistics(config.store)
    except StoreError:  # none saved in the store
        return compute_statistics(config.store, training_members, save=False)


def windows(config: DataConfig, members: list[int] | None, statistics: FieldStatistics | None, store: str | None = None) -> Windows:
    """Returns the windows ``config`` asks for of ``members``, normalised by ``statistics``.

    Args:
        config: the run's data section (steps, stride, members per read).
        members: the members to read; None for every completed one.
        statistics: the normalisation; None for physical units.
        store: the store to read; None for ``config.store``.

    Returns:
        A ``Windows`` dataset of ``Window(inputs [k, C, *S], targets [m, C, *S], dt, params)``.
    """
    return Windows(
        store or config.store,
        config.input_steps,
        config.target_steps,
        config.stride,
        members=members,
        normalize=statistics or False,
        members_per_read=config.members_per_read,
    )
