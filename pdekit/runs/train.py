"""Training runs from a Zarr ensemble: ``train`` (``pdekit train``), the Trainer a config builds, and ``load_run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pdekit.data import ChunkLocalSampler, FieldStatistics, Windows, open_store
from pdekit.data.store import values
from pdekit.devices import Device, default_device, resolve_device
from pdekit.io.formats import require_zarr_store
from pdekit.models import build_model, model_from_spec
from pdekit.rollout.correction import CorrectionObjective
from pdekit.rollout.objectives import RolloutObjective, RolloutTraining
from pdekit.runs.config import CONFIG, ExperimentConfig, load_config, save_config
from pdekit.runs.data import split_members, statistics_of, windows
from pdekit.runs.integrity import (
    Resumption,
    check_store,
    load_run_data,
    lock_run,
    model_differences,
    prepare_resume,
    record_data,
    save_run_data,
    save_run_statistics,
    store_address,
    trained_statistics,
)
from pdekit.training.checkpoint import load_checkpoint, weight_differences
from pdekit.training.distributed import Process, init_from_environment
from pdekit.training.trainer import CHECKPOINT, Trainer


def train(config: ExperimentConfig, run_dir: str | Path, *, resume: bool = False, device: Device | None = None) -> Trainer:
    """Trains ``config.model`` on ``config.data.store`` into ``run_dir``; returns the finished Trainer.

    Writes ``run_dir/config.toml`` (the resolved configuration), ``data.json`` (the store by absolute
    path, its fingerprint, the split), ``normalization.json`` (the statistics it trains with),
    ``checkpoint.pt`` after every epoch and ``metrics.jsonl``. Works alike in one process and under
    ``torchrun``. The run directory is locked while it trains: a second ``train`` there raises
    ``pdekit.data.lock.LockedError`` at once. ``resume=True`` continues the checkpoint on the run's
    own split and statistics, and refuses (before writing anything) settings that would change what
    the checkpoint means (``pdekit.runs.integrity.RESUMABLE``) or another ensemble as the store.

    Args:
        config: what to train, on which store.
        run_dir: the run directory, created if missing.
        resume: continue the checkpoint in ``run_dir``.
        device: where to train; None for this process's CUDA device when there is one, else the CPU.

    Returns:
        The Trainer, after its last epoch.

    Raises:
        ValueError: ``data.store`` is not set, HDF5 data or not the run's ensemble, the resume would
            change a setting outside ``RESUMABLE``, or ``run_dir`` holds a run trained on a stream.
        FileExistsError: ``run_dir`` holds a checkpoint and ``resume`` is off.
        pdekit.data.lock.LockedError: another process trains in ``run_dir``.
    """
    if config.data.store is None:
        raise ValueError("data.store is not set: name the Zarr ensemble to train on (pdekit train --data STORE)")
    require_zarr_store(config.data.store)  # an HDF5 directory: name pdekit import
    open_store(config.data.store)  # a missing or unreadable store is refused before the run directory is touched
    run_dir = Path(run_dir)
    process = init_from_environment()
    config = config.with_overrides(data={"store": store_address(config.data.store)})
    with lock_run(run_dir, "pdekit train", process):
        resumed = resumption(config, run_dir, resume)
        if resumed is not None:
            config = resumed.config
        torch.manual_seed(config.seed)
        if resumed is not None and resumed.data is not None:
            if resumed.data.training_members is None:
                raise ValueError(
                    f"{run_dir} was trained on a stream (pdekit online): resume it with pdekit online --resume, not pdekit train"
                )
            check_store(run_dir, resumed.data, config.data.store)
            training_members, held_out = resumed.data.training_members, resumed.data.validation_members
        else:
            training_members, held_out = split_members(config.data.store, config.data.validation_fraction)
        statistics = training_statistics(config, resumed, training_members)
        training, validation = windows(config.data, training_members, statistics), windows(config.data, held_out, statistics)
        config, trainer = build_trainer(
            config,
            training,
            run_dir,
            statistics=statistics,
            process=process,
            resume=resume,
            device=device,
            split=(training.members.tolist(), held_out),
            resumed=resumed,
        )
        sampler = ChunkLocalSampler(training, seed=config.seed, rank=process.rank, replicas=process.replicas)
        loader = DataLoader(
            training,
            batch_size=config.data.batch_size,
            sampler=sampler,
            num_workers=config.data.workers,
            pin_memory=trainer.device.type == "cuda",  # page-locked batches copy to a GPU asynchronously; a CPU run gains nothing
        )
        validation_loader = DataLoader(validation, batch_size=config.data.batch_size, num_workers=config.data.workers)
        trainer.fit(loader, validation_loader, resume=resume)
    return trainer


def resumption(config: ExperimentConfig, run_dir: Path, resume: bool) -> Resumption | None:
    """Returns what a resume of ``run_dir`` continues (``prepare_resume``), None for a new run; FileExistsError for a checkpoint without
    ``resume``."""
    if not (run_dir / CHECKPOINT).exists():
        return None
    if not resume:
        raise FileExistsError(f"{run_dir / CHECKPOINT} exists: resume it (--resume) or choose another --out")
    return prepare_resume(run_dir, config)


def training_statistics(config: ExperimentConfig, resumed: Resumption | None, members: list[int]) -> FieldStatistics | None:
    """Returns the statistics a run trains with: on resume those it started with (its ``normalization.json``), else ``statistics_of`` the
    store's ``members``."""
    if not config.data.normalize:
        return None
    if resumed is not None and resumed.statistics is not None:
        return resumed.statistics
    return statistics_of(config.data, members)


def build_trainer(
    config: ExperimentConfig,
    example: Windows,
    run_dir: Path,
    *,
    statistics: FieldStatistics | None,
    process: Process,
    resume: bool,
    device: Device | None,
    split: tuple[list[int] | None, list[int]] | None = None,
    resumed: Resumption | None = None,
) -> tuple[ExperimentConfig, Trainer]:
    """Returns the resolved config and a Trainer for ``config.model`` on windows shaped like ``example``'s; records the run in ``run_dir``.

    Resolving fills in what the data decides: the derivative scale of a derivative-mode surrogate
    (on resume, the run's). A resume is checked before anything is written: the settings against the
    run's (``prepare_resume``, unless ``resumed`` is given), then the model built against the
    checkpoint's spec and weights (a one-line ValueError naming the run directory and each differing
    setting). Only then are ``config.toml``, ``normalization.json`` and ``data.json`` (``example``'s
    store, and ``split``: the training and validation members; by default none, as for an online
    run's stream, and ``example``'s) written, each atomically.

    Args:
        config: what to train.
        example: windows shaped as the training batches' (their store is recorded).
        run_dir: the run directory.
        statistics: the normalisation the run trains with; None for physical units.
        process: this process's place in a DDP run; only the main process writes.
        resume: continue the checkpoint in ``run_dir``.
        device: where to train; None for this process's CUDA device when there is one, else the CPU.
        split: the training and validation members recorded; None for none and ``example``'s.
        resumed: what ``prepare_resume`` found, when the caller has checked the resume already.

    Returns:
        ``(config, trainer)``: the config with what the data resolved, and the Trainer.

    Raises:
        ValueError: the resume would change a setting outside ``RESUMABLE``, the checkpoint holds
            another model, or the rollout settings need more target steps than the windows have.
        FileExistsError: ``run_dir`` holds a checkpoint and ``resume`` is off.
    """
    run_dir = Path(run_dir)
    if (run_dir / CHECKPOINT).exists():
        if not resume:
            raise FileExistsError(f"{run_dir / CHECKPOINT} exists: resume it (--resume) or choose another --out")
        if resumed is None:  # otherwise the caller checked, and ``config`` is ``resumed.config`` with what it resolved since
            resumed = prepare_resume(run_dir, config)
            config = resumed.config
    inputs, _, _, params = example[0]  # inputs [k, C, *S]
    steps, channels = inputs.shape[:2]
    objective: CorrectionObjective | RolloutObjective
    if config.rollout.mode == "correction":
        config, objective = correction_objective(config, example, statistics, training_device(device, process))
    else:
        if config.data.target_steps < config.rollout.unroll:
            raise ValueError(
                f"rollout.unroll={config.rollout.unroll} needs data.target_steps >= {config.rollout.unroll}; got {config.data.target_steps}"
            )
        if config.rollout.mode == "derivative" and config.rollout.derivative_scale is None:
            config = config.with_overrides(rollout={"derivative_scale": derivative_scale(example, config.rollout)})
        objective = RolloutObjective(config.rollout, input_steps=config.data.input_steps, dt=example.dt)
    model = build_model(
        config.model.name, steps * channels, channels, dim=inputs.ndim - 2, n_params=params.numel(), **config.model.settings
    )
    if resumed is not None:
        check_checkpoint_model(run_dir, resumed.checkpoint, model)
    if process.is_main:
        training_members, validation_members = split if split is not None else (None, example.members.tolist())
        save_run_statistics(run_dir, statistics)
        save_run_data(run_dir, record_data(example.store, example.dt, training_members, validation_members))
        save_config(config, run_dir / CONFIG)
    trainer = Trainer(
        model,
        config.trainer,
        run_dir=run_dir,
        device=device,
        denormalize=statistics.denormalize if statistics else None,
        process=process,
        objective=objective,
    )
    return config, trainer


def check_checkpoint_model(run_dir: Path, checkpoint: dict, model: torch.nn.Module) -> None:
    """Raises a one-line ValueError naming ``run_dir`` if ``checkpoint`` holds another model than ``model`` (its spec's settings, or its
    weights' shapes)."""
    spec = checkpoint.get("model_spec")
    problems = model_differences(spec, model) if spec is not None else []
    problems = problems or weight_differences(model, checkpoint["model"])
    if problems:
        raise ValueError(
            f"{run_dir}: the checkpoint holds another model than the one asked, so it cannot be resumed: {'; '.join(problems[:6])}"
        )


def training_device(device: Device | None, process: Process) -> torch.device:
    """Returns the device the Trainer trains on, by its own rule: ``device``, else this process's CUDA device, else the CPU."""
    return resolve_device(device) if device is not None else default_device(process.local_rank)


def correction_objective(
    config: ExperimentConfig, example: Windows, statistics: FieldStatistics | None, device: torch.device
) -> tuple[ExperimentConfig, CorrectionObjective]:
    """Returns the config with ``correction.scale`` resolved from the data (when None), and the objective training a coarse-solver
    correction on ``example``'s store."""
    if config.data.input_steps != 1:
        raise ValueError(
            f"rollout.mode = 'correction' needs data.input_steps = 1 (a solver step sees one state); got {config.data.input_steps}"
        )
    if config.data.target_steps < config.correction.unroll:
        raise ValueError(
            f"correction.unroll={config.correction.unroll} needs data.target_steps >= {config.correction.unroll}; got "
            f"{config.data.target_steps}"
        )
    objective = CorrectionObjective.from_store(example.store, config.correction, statistics=statistics, device=device)
    scale = config.correction.scale
    if scale is None:
        scale = objective.scale_from(example)
        config = config.with_overrides(correction={"scale": scale})
    return config, objective.with_scale(scale)


def derivative_scale(training: Windows, rollout: RolloutTraining, windows_used: int = 256) -> float:
    """Returns the standard deviation of the finite-difference ``du/dt`` (``rollout``'s target) over up to ``windows_used`` evenly spread
    training windows."""
    indices = np.linspace(0, len(training) - 1, min(windows_used, len(training))).round().astype(int).tolist()
    items = training.__getitems__(indices)
    history = torch.stack([item.inputs for item in items])  # [N, k, C, *S]
    following = torch.stack([item.targets for item in items])
    scale = rollout.derivative(history, following, training.dt).std().item()
    if not scale > 0:
        raise ValueError("the training windows do not change in time: there is no time derivative to learn")
    return scale


def load_run(run_dir: str | Path, device: Device | None = None) -> tuple[ExperimentConfig, torch.nn.Module]:
    """Returns ``(config, stepper)`` of a trained run, the stepper on ``device`` in eval mode.

    The time step comes from the run's ``data.json`` (the store is not opened), or, for a run from
    before pdekit wrote it, from the store. A checkpoint that is not a pdekit Trainer's, or whose
    weights do not fit the model its spec names, is a one-line ValueError naming the file.

    Args:
        run_dir: the trained run's directory.
        device: where the stepper is put; None for the CPU.

    Returns:
        ``(config, stepper)``: the run's config and its ``Stepper`` (a ``CorrectedSolver`` for a
        ``rollout.mode = "correction"`` run), in eval mode.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``config.toml`` or checkpoint.
        ValueError: the checkpoint is not a pdekit Trainer's, or its weights do not fit its spec.
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG)
    path = run_dir / CHECKPOINT
    state = load_checkpoint(path, map_location="cpu", required=("model", "model_spec"))
    if state.get("model_spec") is None:
        raise ValueError(f"{path} holds no model spec; it was not written by pdekit's Trainer")
    model = model_from_spec(state["model_spec"])
    problems = weight_differences(model, state["model"])
    if problems:
        raise ValueError(f"{path}: its weights do not fit the model its spec names: {'; '.join(problems[:3])}")
    model.load_state_dict(state["model"])
    data = load_run_data(run_dir)
    dt = data.dt if data is not None else float(np.diff(values(open_store(config.data.store), "time")[:2])[0])
    if config.rollout.mode == "correction":  # the coarse solver and its learned correction: a Stepper in the run's units
        device = torch.device(device or "cpu")
        objective = CorrectionObjective.from_store(
            config.data.store, config.correction, statistics=trained_statistics(run_dir, config), device=device
        )
        return config, objective.corrected_solver(model.to(device)).eval()
    stepper = config.rollout.stepper(model, dt, config.data.input_steps)
    return config, stepper.to(device or "cpu").eval()
