"""What a run trains and validates on: the store's train/validation split, its normalisation, its windows."""

from __future__ import annotations

import numpy as np

from pdekit.data import FieldStatistics, StoreError, Windows, compute_statistics, load_statistics, open_store
from pdekit.data.store import member_status
from pdekit.runs.config import DataConfig, ExperimentConfig


def split_members(store, validation_fraction: float) -> tuple[list[int], list[int]]:
    """Returns ``(training members, validation members)``: the last ``validation_fraction`` of the completed ones are held out."""
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
    ``pdekit online`` generated itself (``online.recipe`` set, ``online.validation_store`` empty): all of it.
    """
    if config.online.recipe and not config.online.validation_store:
        completed, _ = member_status(open_store(config.data.store))
        return np.flatnonzero(completed).tolist()
    return split_members(config.data.store, config.data.validation_fraction)[1]


def statistics_of(config: DataConfig, training_members: list[int]) -> FieldStatistics | None:
    """Returns the statistics a new run normalises with; ``None`` without normalisation.

    Those saved in the store by an explicit ``compute_statistics(store)`` when there are, else the
    statistics of ``training_members`` alone (held-out members never inform them), computed without
    writing into the store: a run saves what this returns in its ``normalization.json``, and
    evaluation and resumes use that. Every DDP process computes the same numbers; none writes.
    """
    if not config.normalize:
        return None
    try:
        return load_statistics(config.store)
    except StoreError:  # none saved in the store
        return compute_statistics(config.store, training_members, save=False)


def windows(config: DataConfig, members: list[int] | None, statistics: FieldStatistics | None, store: str | None = None) -> Windows:
    return Windows(
        store or config.store,
        config.input_steps,
        config.target_steps,
        config.stride,
        members=members,
        normalize=statistics or False,
        members_per_read=config.members_per_read,
    )
