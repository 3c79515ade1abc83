"""Training neural operators: the Trainer, losses, checkpoints, the metrics log and DDP set-up.

Runs (a configuration turned into a run directory: ``train``, ``evaluate``, ``train_online``) are
the layer above, ``pdekit.runs``.
"""

from pdekit.training.checkpoint import load_checkpoint, save_checkpoint
from pdekit.training.distributed import Process, init_from_environment
from pdekit.training.losses import make_loss, relative_h1, relative_l2, relative_l2_per_sample
from pdekit.training.metrics_log import MetricsLog
from pdekit.training.trainer import OPTIMIZERS, Trainer, TrainerConfig, optimizer_class

__all__ = [
    "OPTIMIZERS",
    "MetricsLog",
    "Process",
    "Trainer",
    "TrainerConfig",
    "init_from_environment",
    "load_checkpoint",
    "make_loss",
    "optimizer_class",
    "relative_h1",
    "relative_l2",
    "relative_l2_per_sample",
    "save_checkpoint",
]
