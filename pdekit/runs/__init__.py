"""Runs: what turns a configuration into a run directory (config.toml, checkpoint, metrics) and reads it back.

``train`` (``pdekit train``), ``train_online`` (``pdekit online``), ``evaluate`` and
``evaluate_rollout`` (``pdekit evaluate``, ``pdekit rollout``), ``load_run``, the configuration
they share, and what keeps a run directory honest (``integrity``: the lock, the resume check, the
store's fingerprint and the run's own normalisation statistics). This layer sits above
``training`` (the Trainer, losses, checkpoints, DDP) and ``online``.
"""

from pdekit.runs.config import CONFIG, DataConfig, ExperimentConfig, ModelConfig, load_config, save_config
from pdekit.runs.data import split_members, statistics_of, validation_members, windows
from pdekit.runs.evaluate import EVALUATION, Evaluation, RolloutEvaluation, evaluate, evaluate_rollout
from pdekit.runs.integrity import RESUMABLE, store_fingerprint
from pdekit.runs.online import train_online
from pdekit.runs.train import build_trainer, load_run, train

__all__ = [
    "CONFIG",
    "DataConfig",
    "EVALUATION",
    "Evaluation",
    "ExperimentConfig",
    "ModelConfig",
    "RESUMABLE",
    "RolloutEvaluation",
    "build_trainer",
    "evaluate",
    "evaluate_rollout",
    "load_config",
    "load_run",
    "save_config",
    "split_members",
    "statistics_of",
    "store_fingerprint",
    "train",
    "train_online",
    "validation_members",
    "windows",
]
