"""Training neural operators: the Trainer, losses, checkpoints, metrics and DDP set-up."""

from pdekit.training.checkpoint import load_checkpoint, save_checkpoint
from pdekit.training.distributed import Process, init_from_environment
from pdekit.training.losses import make_loss, relative_h1, relative_l2, relative_l2_per_sample
from pdekit.training.metrics import MetricsLog
from pdekit.training.experiment import (
    DataConfig,
    Evaluation,
    ExperimentConfig,
    ModelConfig,
    RolloutEvaluation,
    evaluate,
    evaluate_rollout,
    load_config,
    load_run,
    save_config,
    train,
)
from pdekit.training.online import train_online
from pdekit.training.trainer import Trainer, TrainerConfig

__all__ = [
    "DataConfig",
    "Evaluation",
    "ExperimentConfig",
    "ModelConfig",
    "RolloutEvaluation",
    "evaluate",
    "evaluate_rollout",
    "load_run",
    "load_config",
    "save_config",
    "train",
    "train_online",
    "MetricsLog",
    "Process",
    "Trainer",
    "TrainerConfig",
    "init_from_environment",
    "load_checkpoint",
    "make_loss",
    "relative_h1",
    "relative_l2",
    "relative_l2_per_sample",
    "save_checkpoint",
]
