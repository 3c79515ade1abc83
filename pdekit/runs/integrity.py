"""A run directory that agrees with itself: what it records (config, data, statistics), and the checks that keep a resume and an evaluation
honest.

A run directory holds, besides ``checkpoint.pt`` and ``metrics.jsonl``:

- ``config.toml``: what trains, written (atomically) only once the run is known to be consistent,
  so a refused or failed ``--resume`` leaves it as it was;
- ``data.json``: the store by absolute path (a URL unchanged), its fingerprint (``store_fingerprint``),
  the training and validation members and the time step, so ``evaluate`` and ``rollout`` find the
  same store from any working directory, use the same members, and refuse another ensemble at that path;
- ``normalization.json``: the statistics the run trained with, which evaluation and a resume use
  instead of whatever the store holds by then (evaluation never writes into a store it reads).

A second writer is kept out by ``lock_run`` (an flock in the directory, ``pdekit.data.lock``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pdekit.atomic import write_atomically
from pdekit.data import FieldStatistics, StoreError, load_statistics, open_store
from pdekit.data.lock import DirectoryLock
from pdekit.data.schema import json_attribute
from pdekit.data.store import channel_names, member_status, space_shape, store_fields, variable
from pdekit.models.registry import model_config
from pdekit.runs.config import CONFIG, ExperimentConfig, load_config
from pdekit.training.checkpoint import load_checkpoint
from pdekit.training.trainer import CHECKPOINT, CHECKPOINT_KEYS, TrainerConfig

DATA_RECORD = "data.json"
NORMALIZATION = "normalization.json"

RESUMABLE = frozenset({"trainer.epochs", "trainer.progress", "data.workers", "online.workers", "online.scheduler", "online.solver_device"})
"""The settings a ``--resume`` may change; every other one is refused, naming it.

The rule: a setting may change on resume only if it changes no number the run computes from the
checkpoint on, or if the change has one defined meaning. ``trainer.progress`` (display) and
``data.workers`` (DataLoader processes: the same batches in the same order, and the loader draws its
base seed from the global generator however many workers it has; a 1 + 1 epoch run resumed with
another worker count ends bit-identical to an uninterrupted one) change no number;
``online.workers``, ``online.scheduler`` and ``online.solver_device`` say where the stream's solvers
run (the same members are solved and reach the reservoir in the same stream order; a dask
scheduler has a new address after a restart). ``trainer.epochs`` has one
meaning: train on to the new count, with the schedule extended as
``pdekit.training.trainer.LearningRateSchedule`` says. ``data.store`` may name another path if the
store there has the run's fingerprint (a moved or copied store; a run from before ``data.json`` has
no fingerprint, and must name the same path). Everything else changes what the weights mean or how
they are optimised, and is refused: the model and its settings (resolved against the model's
defaults, so an explicit default equals an omitted one), the data's windows, split and normalisation,
the rollout training, the loss, optimiser, learning rate, schedule, clipping, AMP, the seed, the
online stream's reservoir and epochs, and ``data.batch_size`` and ``data.members_per_read``: the
batch size sets the steps per epoch and the gradient noise the learning rate was tuned for, and
``members_per_read`` sets the ``ChunkLocalSampler``'s blocks, hence the order of the batches a
resumed run replays. A run that wants them changed is a new run (in another directory).
``rollout.derivative_scale`` and ``correction.scale`` left out (None: resolve from the data) take the run's resolved values.
"""


# ----- files written whole or not at all ---------------------------------------------------------
def lock_run(run_dir: str | os.PathLike, what: str, process) -> contextlib.AbstractContextManager:
    """Returns the lock that keeps a second ``what`` (e.g. ``"pdekit train"``) out of ``run_dir``; only the main DDP process takes it.

    Entering it raises ``pdekit.data.lock.LockedError`` at once, naming the holder, if another process holds it.
    """
    return DirectoryLock(run_dir, what) if process.is_main else contextlib.nullcontext()


# ----- the store a run trained on -----------------------------------------------------------------
def store_address(store: str | os.PathLike) -> str:
    """Returns ``store`` as a run records it: a local path made absolute (symlinks kept), a URL (``s3://``, ``file://``, ...) unchanged."""
    text = os.fspath(store)
    if "://" in text:
        return text
    return os.path.abspath(os.path.expanduser(text))


def store_fingerprint(store) -> dict:
    """Returns what identifies an ensemble without reading its data: its recipe (and the recipe's SHA-256), members, fields, grid, times and
    completed members.

    Two stores with equal recipes were generated alike (generation is deterministic per member);
    the rest also tells apart stores without a recipe (imported data).

    Args:
        store: the Zarr ensemble: a local path or an fsspec URL.

    Returns:
        ``recipe_sha256``, ``recipe``, ``members``, ``fields``, ``channels``, ``space_shape``, ``times``
        (their number) and ``completed`` (their number): plain JSON values.

    Raises:
        StoreError: there is no ensemble at ``store``.
    """
    group = open_store(store)
    recipe = json_attribute(group.attrs, "recipe", None)
    completed, _ = member_status(group)
    return {
        "recipe_sha256": hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest(),
        "recipe": recipe,
        "members": int(len(completed)),
        "fields": list(store_fields(group)),
        "channels": list(channel_names(group)),
        "space_shape": list(space_shape(group)),
        "times": int(variable(group, "time").shape[0]),
        "completed": int(completed.sum()),
    }


def fingerprint_differences(recorded: dict, store, members_used: list[int]) -> list[str]:
    """Returns how the store at ``store`` differs from the ``recorded`` fingerprint, and the ``members_used`` it no longer completes; empty
    if it is the same ensemble.

    Members completed since (a resumed generation) are not a difference: the run's members are recorded.
    """
    current = store_fingerprint(store)
    if current["recipe_sha256"] != recorded["recipe_sha256"]:
        wanted, found = recorded.get("recipe") or {}, current["recipe"] or {}
        keys = sorted(k for k in set(wanted) | set(found) if wanted.get(k) != found.get(k))
        problems = [f"recipe.{k}: run has {_show(wanted.get(k))}, store has {_show(found.get(k))}" for k in keys] or ["its recipe differs"]
    else:
        problems = []
    for key in ("members", "fields", "channels", "space_shape", "times"):
        if current[key] != recorded[key]:
            problems.append(f"{key}: run has {_show(recorded[key])}, store has {_show(current[key])}")
    if not problems:
        completed, _ = member_status(open_store(store))
        lost = [m for m in members_used if not (m < len(completed) and completed[m])]
        if lost:
            problems.append(f"members {lost[:10]} the run used are not completed there")
    return problems


@dataclass(frozen=True)
class RunData:
    """``data.json``: the store a run trained on (absolute path or URL), its fingerprint, the members it trained and validated on, and the
    stored time step."""

    store: str
    fingerprint: dict
    dt: float
    training_members: list[int] | None  # None: an online run, trained on a stream
    validation_members: list[int]

    @property
    def members_used(self) -> list[int]:
        return sorted({*(self.training_members or []), *self.validation_members})


def record_data(store, dt: float, training_members: Sequence[int] | None, validation_members: Sequence[int]) -> RunData:
    """Returns the ``RunData`` of a run on ``store`` (its fingerprint taken now); ``training_members`` is None for a run on a stream."""
    training = None if training_members is None else [int(m) for m in training_members]
    return RunData(store_address(store), store_fingerprint(store), float(dt), training, [int(m) for m in validation_members])


def save_run_data(run_dir: str | os.PathLike, data: RunData) -> None:
    write_atomically(Path(run_dir) / DATA_RECORD, json.dumps(dataclasses.asdict(data), indent=1))


def load_run_data(run_dir: str | os.PathLike) -> RunData | None:
    """Returns the run's ``data.json``, or None for a run from before pdekit wrote it; ValueError naming the file if it is not one."""
    path = Path(run_dir) / DATA_RECORD
    if not path.is_file():
        return None
    try:
        return RunData(**json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a pdekit run's data record: {error}") from None


def check_store(run_dir, data: RunData, store) -> None:
    """Raises a one-line ValueError if ``store`` is not the ensemble the run in ``run_dir`` trained on (``data``)."""
    problems = fingerprint_differences(data.fingerprint, store, data.members_used)
    if problems:
        moved = "" if store_address(store) == data.store else f" (it trained on {data.store})"
        raise ValueError(f"{run_dir}: the store {store} is not the ensemble this run trained on{moved}: {'; '.join(problems)}")


# ----- the statistics a run trained with ----------------------------------------------------------
def save_run_statistics(run_dir: str | os.PathLike, statistics: FieldStatistics | None) -> None:
    """Writes the statistics the run trains with to ``run_dir/normalization.json`` (removes a stale one when the run does not normalise)."""
    path = Path(run_dir) / NORMALIZATION
    if statistics is None:
        path.unlink(missing_ok=True)
        return
    write_atomically(
        path,
        json.dumps(
            {
                "channels": list(statistics.channels),
                "mean": list(statistics.mean),
                "std": list(statistics.std),
                "space_dims": statistics.space_dims,
            },
            indent=1,
        ),
    )


def load_run_statistics(run_dir: str | os.PathLike) -> FieldStatistics | None:
    """Returns the statistics in ``run_dir/normalization.json``, None if there is none; ValueError naming the file if it is not one."""
    path = Path(run_dir) / NORMALIZATION
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        return FieldStatistics(tuple(saved["mean"]), tuple(saved["std"]), int(saved["space_dims"]), tuple(saved["channels"]))
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{path} is not a pdekit run's normalisation statistics: {error}") from None


def trained_statistics(run_dir: str | os.PathLike, config: ExperimentConfig) -> FieldStatistics | None:
    """Returns the statistics the run in ``run_dir`` (with ``config``) trained with, for anything that reads the run; never computes them,
    never writes a store.

    Its ``normalization.json``; for a run from before pdekit wrote it, those saved in its store (read
    only); None when the run does not normalise. A ValueError if neither exists.
    """
    if not config.data.normalize:
        return None
    statistics = load_run_statistics(run_dir)
    if statistics is not None:
        return statistics
    try:
        return load_statistics(config.data.store)
    except StoreError as error:
        raise ValueError(
            f"{run_dir} has no {NORMALIZATION} and its store has no saved statistics ({error}); reading a run never computes them into "
            "its store"
        ) from None


# ----- resuming -----------------------------------------------------------------------------------
def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _plain(value):
    """Returns ``value`` with tuples as lists, as TOML reads them back."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def model_settings(name: str, settings: dict) -> dict:
    """Returns every setting of model ``name``: ``settings`` over the model's defaults (so an explicit default equals an omitted one)."""
    return _plain(dataclasses.asdict(model_config(name, settings)))


def flat_settings(values: dict) -> dict[str, object]:
    """Returns an ``ExperimentConfig.to_dict()`` as ``{"section.key": value}``, the model's settings resolved (``model.settings.width``)."""
    values = dict(values)
    model = dict(values.get("model", {}))
    model["settings"] = model_settings(model.get("name", "fno"), model.get("settings", {}))
    values["model"] = model
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            flat[prefix] = _plain(value)

    walk("", values)
    return flat


def checkpoint_trainer_settings(saved: dict) -> dict:
    """Returns the Trainer settings a checkpoint saved, read as ``TrainerConfig`` reads them (an earlier version's "not set" as None).

    Only the keys saved are returned. Settings ``TrainerConfig`` refuses (one it no longer has) are
    returned as saved, so that the resume check names them.
    """
    try:
        read = dataclasses.asdict(TrainerConfig(**saved))
    except (TypeError, ValueError):
        return saved
    return {key: read[key] for key in saved}


def resume_differences(recorded: dict, asked: dict, safe=RESUMABLE) -> list[str]:
    """Returns ``"section.key: run has A, asked B"`` for every setting of ``asked`` that differs from ``recorded`` (both ``flat_settings``),
    less ``safe`` and ``data.store``."""
    keys = sorted((set(recorded) | set(asked)) - set(safe) - {"data.store"})
    missing = object()
    return [
        f"{key}: run has {_show(recorded.get(key, 'nothing'))}, asked {_show(asked.get(key, 'nothing'))}"
        for key in keys
        if recorded.get(key, missing) != asked.get(key, missing)
    ]


@dataclass(frozen=True)
class Resumption:
    """What a run directory holds for a resume: the config that trains on (``asked``, resolved from the run), the checkpoint, and the run's
    data and statistics (None for older runs)."""

    config: ExperimentConfig
    checkpoint: dict
    data: RunData | None
    statistics: FieldStatistics | None


def prepare_resume(run_dir: str | os.PathLike, asked: ExperimentConfig) -> Resumption:
    """Returns what resuming the run in ``run_dir`` with the config ``asked`` trains on; reads, never writes.

    The run's settings are its ``config.toml`` with the checkpoint's own record over it (its Trainer
    settings and model spec: the checkpoint is what the weights are). A one-line ValueError names
    every setting ``asked`` changes outside ``RESUMABLE``, a ``trainer.epochs`` below the epochs
    done, or a checkpoint that is not a Trainer's.
    """
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT, map_location="cpu", required=CHECKPOINT_KEYS)
    if not (run_dir / CONFIG).is_file():
        raise ValueError(
            f"{run_dir} has a checkpoint but no {CONFIG}: what it trained is unknown, so it cannot be resumed; start a new run"
        )
    run = load_config(run_dir / CONFIG)
    if asked.rollout.derivative_scale is None:  # "resolve from the data": the run resolved it
        asked = asked.with_overrides(rollout={"derivative_scale": run.rollout.derivative_scale})
    if asked.correction.scale is None:  # likewise
        asked = asked.with_overrides(correction={"scale": run.correction.scale})
    recorded = flat_settings(run.to_dict())
    if isinstance(state.get("trainer_config"), dict):
        recorded.update({f"trainer.{k}": _plain(v) for k, v in checkpoint_trainer_settings(state["trainer_config"]).items()})
    spec = state.get("model_spec")
    if isinstance(spec, dict) and "name" in spec:
        recorded = {k: v for k, v in recorded.items() if not k.startswith("model.")}
        recorded.update(flat_settings({"model": {"name": spec["name"], "settings": spec.get("settings", {})}}))
    differences = resume_differences(recorded, flat_settings(asked.to_dict()))
    data = load_run_data(run_dir)
    if (
        data is None
        and asked.data.store is not None
        and (run.data.store is None or store_address(asked.data.store) != store_address(run.data.store))
    ):  # no fingerprint to recognise a moved store by
        differences.append(f"data.store: run has {run.data.store!r}, asked {asked.data.store!r}")
    if differences:
        raise ValueError(
            f"{run_dir}: --resume would change what the checkpoint means: {'; '.join(differences)}. "
            f"Only {', '.join(sorted(RESUMABLE))} may change on resume (the run's own settings are in {run_dir / CONFIG}, "
            f"e.g. pdekit train --config {run_dir / CONFIG} --resume); train a new run (another --out) to change the rest"
        )
    done = int(state["epoch"])
    if asked.trainer.epochs < done:
        raise ValueError(
            f"{run_dir}: trainer.epochs={asked.trainer.epochs} is below the {done} epochs the checkpoint has done; ask for at least {done}"
        )
    return Resumption(asked, state, data, load_run_statistics(run_dir))


def model_differences(spec: object, model: torch.nn.Module) -> list[str]:
    """Returns ``"model.KEY: run has A, asked B"`` for every entry of a checkpoint's model ``spec`` that differs from ``model.spec``."""
    built = getattr(model, "spec", None) or {}
    if not isinstance(spec, dict) or "name" not in spec:
        return [f"the checkpoint's model spec is {spec!r}, not a pdekit model's"]
    problems = []
    for key in ("name", "in_channels", "out_channels", "dim", "n_params"):
        if spec.get(key) != built.get(key):
            problems.append(f"model.{key}: run has {_show(spec.get(key))}, asked {_show(built.get(key))}")
    if spec.get("name") == built.get("name"):
        problems += resume_differences(
            flat_settings({"model": {"name": spec["name"], "settings": spec.get("settings", {})}}),
            flat_settings({"model": {"name": built["name"], "settings": built.get("settings", {})}}),
            safe=(),
        )
    return problems
