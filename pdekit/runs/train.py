"""Training runs from a Zarr ensemble: ``train`` (``pdekit train``), the Trainer a config builds, and ``load_run``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pdekit.data import ChunkLocalSampler, FieldStatistics, Windows, open_store
from pdekit.models import build_model, model_from_spec
from pdekit.rollout.objectives import RolloutObjective, RolloutTraining
from pdekit.runs.config import CONFIG, ExperimentConfig, load_config, save_config
from pdekit.runs.data import split_members, statistics_of, windows
from pdekit.training.checkpoint import load_checkpoint
from pdekit.training.distributed import init_from_environment
from pdekit.training.trainer import CHECKPOINT, Trainer


def train(config: ExperimentConfig, run_dir: str | Path, *, resume: bool = False, device=None) -> Trainer:
    """Trains ``config.model`` on ``config.data.store`` into ``run_dir``; returns the finished Trainer.

    Writes ``run_dir/config.toml`` (the resolved configuration), ``checkpoint.pt`` after every epoch
    and ``metrics.jsonl``. Works alike in one process and under ``torchrun``.
    """
    if not config.data.store:
        raise ValueError("data.store is empty: name the Zarr ensemble to train on (pdekit train --data STORE)")
    run_dir = Path(run_dir)
    process = init_from_environment()
    torch.manual_seed(config.seed)
    statistics = statistics_of(config.data)
    training_members, held_out = split_members(config.data.store, config.data.validation_fraction)
    training, validation = windows(config.data, training_members, statistics), windows(config.data, held_out, statistics)
    config, trainer = build_trainer(config, training, run_dir, statistics=statistics, process=process, resume=resume, device=device)
    sampler = ChunkLocalSampler(training, seed=config.seed, rank=process.rank, replicas=process.replicas)
    loader = DataLoader(training, batch_size=config.data.batch_size, sampler=sampler, num_workers=config.data.workers, pin_memory=torch.cuda.is_available())
    validation_loader = DataLoader(validation, batch_size=config.data.batch_size, num_workers=config.data.workers)
    trainer.fit(loader, validation_loader, resume=resume)
    return trainer


def build_trainer(
    config: ExperimentConfig, example: Windows, run_dir: Path, *, statistics: FieldStatistics | None, process, resume: bool, device
) -> tuple[ExperimentConfig, Trainer]:
    """Returns the resolved config and a Trainer for ``config.model`` on windows shaped like ``example``'s; writes ``run_dir/config.toml``.

    Resolving fills in what the data decides: the derivative scale of a derivative-mode surrogate.
    """
    inputs, _, _, params = example[0]  # inputs [k, C, *S]
    if config.data.target_steps < config.rollout.unroll:
        raise ValueError(f"rollout.unroll={config.rollout.unroll} needs data.target_steps >= {config.rollout.unroll}; got {config.data.target_steps}")
    if config.rollout.mode == "derivative" and not config.rollout.derivative_scale:
        config = config.with_overrides(rollout={"derivative_scale": derivative_scale(example, config.rollout)})
    steps, channels = inputs.shape[:2]
    model = build_model(config.model.name, steps * channels, channels, dim=inputs.ndim - 2, n_params=params.numel(), **config.model.settings)
    objective = RolloutObjective(config.rollout, input_steps=config.data.input_steps, dt=example.dt)
    if process.is_main:
        if not resume and (run_dir / CHECKPOINT).exists():
            raise FileExistsError(f"{run_dir / CHECKPOINT} exists: resume it (--resume) or choose another --out")
        save_config(config, run_dir / CONFIG)
    trainer = Trainer(
        model, config.trainer, run_dir=run_dir, device=device, decode=statistics.denormalize if statistics else None, process=process, objective=objective
    )
    return config, trainer


def derivative_scale(training: Windows, rollout: RolloutTraining, windows_used: int = 256) -> float:
    """Returns the standard deviation of the finite-difference ``du/dt`` (``rollout``'s target) over up to ``windows_used`` evenly spread training windows."""
    indices = np.linspace(0, len(training) - 1, min(windows_used, len(training))).round().astype(int).tolist()
    items = training.__getitems__(indices)
    history = torch.stack([item.inputs for item in items])  # [N, k, C, *S]
    following = torch.stack([item.targets for item in items])
    scale = rollout.derivative(history, following, training.dt).std().item()
    if not scale > 0:
        raise ValueError("the training windows do not change in time: there is no time derivative to learn")
    return scale


def load_run(run_dir: str | Path, device=None):
    """Returns ``(config, stepper)`` of a trained run, the stepper on ``device`` in eval mode."""
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG)
    state = load_checkpoint(run_dir / CHECKPOINT, map_location="cpu")
    if state.get("model_spec") is None:
        raise ValueError(f"{run_dir / CHECKPOINT} holds no model spec; it was not written by pdekit's Trainer")
    model = model_from_spec(state["model_spec"])
    model.load_state_dict(state["model"])
    dt = float(np.diff(np.asarray(open_store(config.data.store)["time"][:2]))[0])
    stepper = config.rollout.stepper(model, dt, config.data.input_steps)
    return config, stepper.to(device or "cpu").eval()


