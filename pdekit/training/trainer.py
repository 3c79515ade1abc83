"""The Trainer: optimisation, validation, checkpoints with exact resume, metrics, DDP."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pdekit.devices import Device, default_device, resolve_device
from pdekit.progress import progress_bar
from pdekit.rollout.objectives import Loss, RolloutObjective, RolloutTraining
from pdekit.training.checkpoint import DATA_STATE, data_state_files, data_state_path, load_checkpoint, save_checkpoint, weight_differences
from pdekit.training.distributed import Process, barrier, init_from_environment, sum_across_processes
from pdekit.training.losses import LOSSES, make_loss, relative_h1, relative_l2_per_sample
from pdekit.training.metrics_log import MetricsLog

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
SCHEDULES = ("cosine", "step", "constant", "one_cycle")
CHECKPOINT_KEYS = ("model", "optimizer", "schedule", "scaler", "epoch", "rng_cpu", "history")

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
"""The optimisers ``TrainerConfig.optimizer`` names; each is built as ``cls(parameters, lr=..., weight_decay=...)``.

``"adam"`` adds ``weight_decay`` to the gradient (L2 regularisation); ``"adamw"`` decays the weights
directly (Loshchilov and Hutter, "Decoupled weight decay regularization", ICLR 2019).
"""


def optimizer_class(name: str) -> Callable[..., torch.optim.Optimizer]:
    """Returns the optimiser class ``name`` from ``OPTIMIZERS``.

    Args:
        name: ``"adam"`` or ``"adamw"``.

    Returns:
        The ``torch.optim`` class.

    Raises:
        ValueError: if ``name`` is not in ``OPTIMIZERS``, naming ``trainer.optimizer`` and the choices.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"trainer.optimizer must be one of {sorted(OPTIMIZERS)}; got {name!r}")
    return OPTIMIZERS[name]


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of ``Trainer``; the defaults train a neural operator sensibly.

    ``schedule`` is ``"cosine"`` (annealed over ``schedule_epochs``, by default ``epochs``), ``"step"``
    (times ``gamma`` every ``step_epochs``) or ``"constant"``, the rate set once per epoch; or
    ``"one_cycle"``, set before every batch (``torch.optim.lr_scheduler.OneCycleLR``'s rule, which
    the Galerkin transformer's authors train with) over ``schedule_epochs`` (``LearningRateSchedule``,
    which also says how a cosine schedule extends when a resumed run asks for more epochs).
    ``gradient_clip`` bounds the global gradient norm (0: no clipping). ``amp`` enables
    float16 autocast with loss scaling on CUDA; it is off by default because cuFFT computes half
    precision transforms only for power-of-two sizes, so check it on your grid before relying on it.

    Args:
        epochs: the number of epochs to train (a resumed run trains up to it).
        optimizer: a name in ``OPTIMIZERS``: ``"adam"`` or ``"adamw"``.
        learning_rate: the initial learning rate (positive).
        weight_decay: the optimiser's weight decay (non-negative).
        schedule: ``"cosine"``, ``"step"``, ``"constant"`` or ``"one_cycle"``.
        schedule_epochs: where a cosine schedule reaches 0 (a one-cycle one its least rate), at least
            ``epochs``; None: ``epochs``.
        step_epochs: a step schedule's epochs between decays.
        gamma: a step schedule's factor per decay.
        one_cycle_warmup: the fraction of a one-cycle schedule's steps rising to ``learning_rate``, in (0, 1)
            (OneCycleLR's ``pct_start``).
        one_cycle_div: ``learning_rate`` over the first step's rate, at least 1 (``div_factor``).
        one_cycle_final_div: the first step's rate over the last one's, at least 1 (``final_div_factor``).
        gradient_clip: the bound on the global gradient norm (0: no clipping).
        loss: a name in ``LOSSES``: ``"l2"``, ``"h1"`` or ``"galerkin_h1"`` (the Galerkin transformer's regularised L2).
        amp: float16 autocast with loss scaling, on CUDA only.
        progress: a progress bar over each epoch's batches (rank 0 only; also off when standard
            error is not a terminal or under ``TQDM_DISABLE``).

    A ``config.toml`` or checkpoint of an earlier pdekit version holds ``schedule_epochs = 0`` for
    "``epochs``"; it reads as None.

    Raises:
        ValueError: naming the setting (``trainer.<name>``) for an unknown optimiser, schedule or loss,
            a count below its minimum, a non-finite or out-of-range number, or a cosine schedule that
            ends before the last epoch.
    """

    epochs: int = 20
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    schedule_epochs: int | None = None
    step_epochs: int = 10
    gamma: float = 0.5
    one_cycle_warmup: float = 0.3
    one_cycle_div: float = 25.0
    one_cycle_final_div: float = 1e4
    gradient_clip: float = 1.0
    loss: str = "l2"
    amp: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule_epochs == 0:  # config.toml files and checkpoints of earlier pdekit versions hold 0 for "epochs"
            object.__setattr__(self, "schedule_epochs", None)
        optimizer_class(self.optimizer)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"trainer.schedule must be one of {', '.join(map(repr, SCHEDULES))}; got {self.schedule!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"trainer.loss must be one of {sorted(LOSSES)}; got {self.loss!r}")
        for name, lowest in (("epochs", 1), ("step_epochs", 1), ("schedule_epochs", 1)):
            value = getattr(self, name)
            if value is not None and value < lowest:
                raise ValueError(f"trainer.{name} must be >= {lowest}; got {value}")
        if self.schedule in ("cosine", "one_cycle") and self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ValueError(
                f"trainer.schedule_epochs={self.schedule_epochs} ends the {self.schedule} schedule before trainer.epochs={self.epochs}: "
                "the epochs after it would train at its least rate; use schedule_epochs >= epochs (or leave it out, meaning epochs)"
            )
        if not 0 < self.one_cycle_warmup < 1:
            raise ValueError(f"trainer.one_cycle_warmup must be in (0, 1); got {self.one_cycle_warmup}")
        for name in ("one_cycle_div", "one_cycle_final_div"):
            if not 1 <= getattr(self, name) < math.inf:
                raise ValueError(f"trainer.{name} must be >= 1 and finite; got {getattr(self, name)}")
        for name, positive in (("learning_rate", True), ("gamma", True), ("weight_decay", False), ("gradient_clip", False)):
            value = getattr(self, name)
            if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
                raise ValueError(f"trainer.{name} must be {'positive' if positive else 'non-negative'} and finite; got {value}")


class LearningRateSchedule:
    """The learning rate of every epoch (of every batch, for ``one_cycle``) as a factor of ``TrainerConfig.learning_rate``: a function
    of the epoch, the batch and how the run was extended alone.

    - ``"cosine"``: ``(1 + cos θ(e)) / 2``, the phase ``θ`` rising linearly from 0 at epoch 0 to π at
      the planned end ``T`` (``schedule_epochs``, by default ``epochs``): the annealing of Loshchilov
      and Hutter, "SGDR: stochastic gradient descent with warm restarts", ICLR 2017, without restarts
      and with a minimum of 0. It stays at π from ``T`` on, so the last planned epoch ``T - 1`` still trains at
      ``(1 + cos(π (T - 1) / T)) / 2 > 0``. ``"step"``: ``gamma ** (e // step_epochs)``.
      ``"constant"``: 1. ``"one_cycle"``: ``one_cycle`` at every optimiser step, the
      ``n`` batches of epoch ``e`` being its steps ``e n, ..., e n + n - 1`` of ``T n``, with Adam's
      ``beta1`` cycled as OneCycleLR cycles it (``momentum``); a resumed run keeps the checkpoint's
      ``T`` and is refused when asked to train past it. The epoch record's ``learning_rate`` is the
      rate of the epoch's first batch.
    - Extending (or shortening) a run on resume. ``step`` and ``constant`` do not depend on the
      number of epochs, so a run resumed for more epochs has exactly the rates of an uninterrupted
      run of that length. A cosine schedule does: when the checkpoint's planned end differs from this
      config's and ``E`` epochs are done, the phase continues from that of the last trained epoch,
      ``θ(E - 1)``, linearly to π at the new end ``T'``:
      ``θ(e) = θ(E - 1) + (π - θ(E - 1)) (e - E + 1) / (T' - E + 1)``. The phase only grows, so the
      rate never rises; no epoch before ``T'`` trains at 0; the epochs already trained keep the rates
      they had; and resuming with an unchanged plan (a killed run) is the uninterrupted schedule
      exactly. The alternatives are worse: keeping the checkpoint's ``T`` (what restoring a
      ``torch.optim.lr_scheduler.CosineAnnealingLR`` does) trains epoch ``T`` at rate 0 and then climbs
      back up the cosine; setting ``T'`` and re-deriving the phase from the epoch count
      (``θ = π e / T'``) jumps the rate from the end of one anneal back to half the initial rate, a
      warm restart nobody asked for. The price of continuing the phase: after a finished 10-epoch
      anneal, 10 more epochs train at the small rates of the cosine's tail (at most 2.4% of the initial
      rate); a run meant to be long should be planned long (or ``schedule_epochs`` set beyond
      ``epochs``).
    """

    def __init__(self, config: TrainerConfig):
        self.kind, self.step_epochs, self.gamma = config.schedule, config.step_epochs, config.gamma
        self.one_cycle = (config.one_cycle_warmup, config.one_cycle_div, config.one_cycle_final_div)
        self.epochs = config.epochs
        self.end = config.epochs if config.schedule_epochs is None else config.schedule_epochs
        self.anchor_epoch, self.anchor_phase = 0, 0.0

    def phase(self, epoch: int) -> float:
        """Returns the cosine's phase ``θ`` in [0, π] at ``epoch``."""
        return cosine_phase(epoch, self.anchor_epoch, self.anchor_phase, self.end)

    @property
    def per_batch(self) -> bool:
        """Returns whether the rate changes within an epoch (``factor`` needs ``batch`` and ``batches``)."""
        return self.kind == "one_cycle"

    def factor(self, epoch: int, batch: int = 0, batches: int = 1) -> float:
        """Returns the learning rate of ``epoch`` (from 0), at its ``batch`` of ``batches``, over ``TrainerConfig.learning_rate``."""
        if self.kind == "one_cycle":
            warmup, div, final_div = self.one_cycle
            return one_cycle(epoch * batches + batch, self.end * batches, warmup, 1 / div, 1.0, 1 / (div * final_div))
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(self.phase(epoch)))
        if self.kind == "step":
            return self.gamma ** (epoch // self.step_epochs)
        return 1.0

    def momentum(self, epoch: int, batch: int, batches: int) -> float:
        """Returns a one-cycle schedule's first momentum (Adam's ``beta1``) at ``epoch``'s ``batch`` of ``batches``: OneCycleLR's
        ``cycle_momentum``, 0.95 down to 0.85 while the rate rises and back while it falls."""
        high, low = ONE_CYCLE_MOMENTUM
        return one_cycle(epoch * batches + batch, self.end * batches, self.one_cycle[0], high, low, high)

    def state_dict(self) -> dict:
        return {"schedule": self.kind, "end": self.end, "anchor_epoch": self.anchor_epoch, "anchor_phase": self.anchor_phase}

    def load_state_dict(self, state: dict, epochs_done: int) -> None:
        """Continues the schedule saved in ``state`` after ``epochs_done`` epochs, extended to this config's end as the class says."""
        if "end" not in state:  # a torch.optim.lr_scheduler state, from an older pdekit: a cosine from epoch 0 to T_max
            state = {
                "schedule": "cosine" if "T_max" in state else self.kind,
                "end": int(state.get("T_max", self.end)),
                "anchor_epoch": 0,
                "anchor_phase": 0.0,
            }
        if state["schedule"] == self.kind == "one_cycle":
            end = int(state["end"])
            if self.epochs > end:
                raise ValueError(
                    f"trainer.epochs={self.epochs} runs past the one_cycle schedule's end ({end} epochs, from the checkpoint): the epochs "
                    "after it would train at its least rate; start a new run with the longer plan"
                )
            self.end = end  # a resumed run keeps its planned cycle
            return
        if state["schedule"] != self.kind or self.kind != "cosine":
            return  # step and constant are functions of the epoch alone; another kind starts its own curve
        end, anchor_epoch, anchor_phase = int(state["end"]), int(state["anchor_epoch"]), float(state["anchor_phase"])
        if end == self.end or epochs_done < 1 or self.end < epochs_done:  # the same plan, or nothing left to train
            self.end, self.anchor_epoch, self.anchor_phase = end, anchor_epoch, anchor_phase
            return
        self.anchor_epoch, self.anchor_phase = epochs_done - 1, cosine_phase(epochs_done - 1, anchor_epoch, anchor_phase, end)


def one_cycle(step: int, steps: int, warmup: float, start: float, peak: float, end: float) -> float:
    """Returns a one-cycle value at optimiser step ``step`` (from 0) of ``steps``: ``start`` to ``peak`` to ``end``, two cosine phases.

    Smith and Topin, "Super-convergence", 2019, as ``torch.optim.lr_scheduler.OneCycleLR`` computes
    it: from ``start`` to ``peak`` at step ``warmup * steps - 1``, then to ``end`` at step
    ``steps - 1``, where it stays after.
    """
    turn, last = warmup * steps - 1, steps - 1
    step = min(step, last)
    if step <= turn:
        low, high, fraction = start, peak, step / turn if turn > 0 else 1.0
    else:
        low, high, fraction = peak, end, (step - turn) / (last - turn)
    return high + (low - high) / 2 * (math.cos(math.pi * fraction) + 1)


ONE_CYCLE_MOMENTUM = (0.95, 0.85)  # OneCycleLR's max_momentum and base_momentum: Adam's beta1 falls while the rate rises


def cosine_phase(epoch: int, anchor_epoch: int, anchor_phase: float, end: int) -> float:
    """Returns the phase at ``epoch`` of a cosine anneal at phase ``anchor_phase`` at ``anchor_epoch``, reaching π at ``end`` and staying
    there."""
    if epoch >= end:
        return math.pi
    return anchor_phase + (math.pi - anchor_phase) * (epoch - anchor_epoch) / (end - anchor_epoch)


def log_value(value) -> str:
    """Returns an epoch record's value as its log line shows it: floats to 4 significant digits, lists element by element."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(log_value(v) for v in value) + "]"
    return str(value)


def unpack(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Returns ``(inputs, targets, params)`` of a batch ``(inputs, targets)`` or a ``Window`` ``(inputs, targets, dt, params)``."""
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 4):
        raise ValueError("a training batch must be (inputs, targets) or (inputs, targets, dt, params) as pdekit.data.Windows yields")
    return batch[0], batch[1], batch[3] if len(batch) == 4 else None


class Objective(Protocol):
    """What the Trainer optimises and validates: ``OneStep``, ``RolloutObjective``, ``CorrectionObjective``.

    An objective may also have ``space_dims(inputs) -> int``, the spatial axes of its batches
    (windows ``[B, k, C, *S]`` have one axis more than ``[B, C, *S]``); without it they are ``inputs.ndim - 2``.
    """

    def loss(
        self, network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None, loss_fn: Loss, epoch: int
    ) -> torch.Tensor:
        """Returns the training loss of one batch (a 0-d tensor carrying gradients)."""
        ...

    def prediction(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(prediction, truth)``, both ``[B, C, *S]``, for the validation metrics."""
        ...


class OneStep:
    """The default objective: the model maps inputs to targets directly."""

    @staticmethod
    def space_dims(inputs: torch.Tensor) -> int:
        """Returns the number of spatial axes of a batch ``[B, C, *S]``."""
        return inputs.ndim - 2

    def loss(
        self, network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None, loss_fn: Loss, epoch: int
    ) -> torch.Tensor:
        return loss_fn(network(inputs, params), targets)

    def prediction(
        self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return model(inputs, params), targets


class Trainer:
    """Trains ``model`` on batches ``[B, C_in, *S] -> [B, C_out, *S]``, checkpointing to ``run_dir``.

    ``fit`` runs the epochs; after each one it validates, appends a JSON line to
    ``run_dir/metrics.jsonl`` and atomically rewrites ``run_dir/checkpoint.pt`` (model, optimiser,
    schedule, loss scaler, random state, history). ``fit(..., resume=True)`` continues from that
    checkpoint and ends with the same weights as an uninterrupted run, provided the batches'
    order depends only on the epoch (``EpochSampler``, ``ChunkLocalSampler``,
    ``DistributedSampler``: the Trainer calls their ``set_epoch``). Resumed with more ``epochs``, it
    trains on with the schedule extended as ``LearningRateSchedule`` defines; a checkpoint that is not
    a Trainer's, or whose weights do not fit ``model``, is a one-line ValueError naming the file.

    Under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` and only rank 0 writes
    files, shows progress and logs each epoch's record (``logging.INFO`` on ``pdekit.training.trainer``).

    Training data with a state of its own (a ``train`` with ``state_dict()``, e.g. an online stream's
    reservoir) has it saved by every process after each epoch, to ``data_state_path(run_dir, epoch,
    rank)``, before rank 0 writes that epoch's checkpoint (all processes meet in between), so the
    files of the checkpoint's epoch always exist; older ones are removed. Data that ends
    (``train.exhausted`` set, a finite stream used up) ends training after that epoch.
    ``denormalize`` maps normalised predictions and targets back to physical units before the
    validation metrics. ``objective`` defines the loss and the validation prediction (default:
    ``OneStep`` for ``(x, y)`` batches, a state-mode ``RolloutObjective`` for ``Window`` batches;
    ``pdekit.rollout.RolloutObjective`` with other settings trains for rollouts).

    Args:
        model: ``model(x [B, C_in, *S], params [B, P] | None) -> [B, C_out, *S]``; moved to ``device``.
        config: the settings.
        run_dir: where the checkpoint and the metrics log go (``None``: nothing is written).
        device: the training device (``None``: ``pdekit.devices.default_device`` of this process's local rank).
        denormalize: the inverse of the data's normalisation, ``[B, C, *S] -> [B, C, *S]``, applied to
            predictions and targets before the validation metrics (``None``: they are compared as they are).
        process: this process's place in a DDP job (``None``: from the ``torchrun`` environment).
        objective: the loss and validation prediction (``None``: chosen from the first batch).
        decode: the former name of ``denormalize``, deprecated.

    Raises:
        ValueError: if both ``denormalize`` and ``decode`` are given.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainerConfig = TrainerConfig(),
        *,
        run_dir: str | Path | None = None,
        device: Device | None = None,
        denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        process: Process | None = None,
        objective: Objective | None = None,
        decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if decode is not None:
            if denormalize is not None:
                raise ValueError("give denormalize only: decode is its former name")
            warnings.warn("Trainer(decode=...) is deprecated: it is Trainer(denormalize=...)", DeprecationWarning, stacklevel=2)
            denormalize = decode
        self.config = config
        self.objective = objective  # None: chosen from the first batch (objective_for)
        self.process = process or init_from_environment()
        self.device = default_device(self.process.local_rank) if device is None else resolve_device(device)
        self.model = model.to(self.device)
        self.network: nn.Module = self.model
        if self.process.distributed:
            self.network = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.denormalize = denormalize
        self.optimizer = optimizer_class(config.optimizer)(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.schedule = LearningRateSchedule(config)
        self.amp = config.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history: list[dict] = []
        self.epoch = 0

    def objective_for(self, batch: tuple | list) -> Objective:
        """Returns the objective, choosing the default from ``batch`` when none was given.

        Plain ``(x, y)`` batches train ``OneStep``; ``Window`` batches ``[B, k, C, *S]`` a state-mode
        ``RolloutObjective`` (its ``Stepper`` folds the ``k`` states into the model's channels).

        Args:
            batch: ``(inputs, targets)`` or a ``Window`` ``(inputs, targets, dt, params)``.

        Returns:
            The objective, kept for the rest of training.
        """
        if self.objective is None:
            if len(batch) == 4:
                self.objective = RolloutObjective(RolloutTraining(), input_steps=batch[0].shape[1], dt=float(batch[2].reshape(-1)[0]))
            else:
                self.objective = OneStep()
        return self.objective

    def _on_device(self, batch: tuple | list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        inputs, targets, params = unpack(batch)
        return (
            inputs.to(self.device, non_blocking=True),
            targets.to(self.device, non_blocking=True),
            None if params is None else params.to(self.device, non_blocking=True),
        )

    # ----- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """The checkpoint file, ``run_dir/checkpoint.pt`` (``None`` without a ``run_dir``)."""
        return self.run_dir / CHECKPOINT if self.run_dir is not None else None

    def state_dict(self) -> dict:
        """Returns everything an exact resume needs; every value loads under ``weights_only=True``.

        Returns:
            A dict of the model, optimiser, schedule and loss-scaler states, the epoch, the CPU and
            CUDA random states, the config and the history.
        """
        return {
            "model": self.model.state_dict(),
            "model_spec": getattr(self.model, "spec", None),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "rng_cpu": torch.get_rng_state(),
            # Every visible GPU's generator, whichever device trains: the state of the process, not a device choice.
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "trainer_config": asdict(self.config),
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores a ``state_dict()``; a cosine schedule planned for other epochs is extended as ``LearningRateSchedule.load_state_dict``
        says.

        Args:
            state: a ``state_dict()``, e.g. from ``load_checkpoint``.
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"], epochs_done=int(state["epoch"]))
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        torch.set_rng_state(state["rng_cpu"])
        if state.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])

    def _restore(self, resume: bool) -> None:
        if self.run_dir is None:
            return
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            if self.process.is_main and (self.run_dir / METRICS).exists():
                MetricsLog(self.run_dir / METRICS).truncate_after(-1)  # lines of a killed first epoch that no checkpoint holds
            return
        if not resume:
            raise FileExistsError(f"{path} exists: resume it (resume=True, `pdekit train --resume`) or choose another run directory")
        state = load_checkpoint(path, map_location=self.device, required=CHECKPOINT_KEYS)
        problems = weight_differences(self.model, state["model"])
        if problems:
            raise ValueError(f"{path} holds the weights of another model: {'; '.join(problems[:3])}")
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"{path} cannot be resumed by this Trainer: {first_line}") from error
        if self.process.is_main:
            MetricsLog(self.run_dir / METRICS).truncate_after(self.epoch - 1)

    # ----- training ----------------------------------------------------------------------------
    def fit(self, train: Iterable, validation: Iterable | None = None, *, resume: bool = False) -> list[dict]:
        """Trains for ``config.epochs`` epochs (from the checkpoint's when resuming), or until ``train`` ends; returns one record per epoch.

        Training ends early after an epoch that leaves ``train.exhausted`` set (a finite online
        stream used up); such an epoch may be short.

        Args:
            train: the training batches, iterated once per epoch: ``(inputs, targets)`` pairs or
                ``Window`` batches; its ``sampler.set_epoch`` (if any) is called before each epoch.
            validation: batches for ``evaluate`` after each epoch (``None``: no validation).
            resume: continue from ``run_dir/checkpoint.pt`` if it exists.

        Returns:
            The history: one dict per epoch (``epoch``, ``train_loss``, ``learning_rate``, ``seconds``,
            ``samples_per_second``, ``validation_l2``, ``validation_h1``, and ``train.summary()``'s figures).

        Raises:
            FileExistsError: if a checkpoint exists and ``resume`` is false.
            ValueError: if the checkpoint cannot be resumed by this Trainer, or ``train`` or ``validation`` yields no batches.
            FloatingPointError: if an epoch's training loss is not finite.
        """
        self._restore(resume)
        loss_fn: Loss | None = None
        metrics_log = MetricsLog(self.run_dir / METRICS) if self.run_dir is not None and self.process.is_main else None
        while self.epoch < self.config.epochs:
            sampler = getattr(train, "sampler", None)
            if sampler is not None and hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)
            batches_per_epoch = self._batches_per_epoch(train)
            learning_rate = self._set_rate(0, batches_per_epoch)
            started = time.perf_counter()
            self.network.train()
            total_loss = torch.zeros((), device=self.device)
            samples = 0
            batches = progress_bar(
                train,
                enabled=self.config.progress and self.process.is_main,
                desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
                leave=False,
            )
            for index, batch in enumerate(batches):
                if self.schedule.per_batch and index:
                    self._set_rate(index, batches_per_epoch)
                inputs, targets, params = self._on_device(batch)
                if loss_fn is None:
                    objective = self.objective_for(batch)
                    # An objective may say how many spatial axes its batches have (windows [B, k, C, *S]); plain [B, C, *S] otherwise.
                    space_dims = getattr(objective, "space_dims", OneStep.space_dims)(inputs)
                    loss_fn = make_loss(self.config.loss, space_dims)
                loss = self.train_step(inputs, targets, params, loss_fn)
                total_loss += loss.detach() * len(inputs)  # stays on the device: no sync per batch
                samples += len(inputs)
            exhausted = bool(getattr(train, "exhausted", False))
            if samples == 0:
                if exhausted and self.history:
                    log.info("the training data ended after epoch %d of %d", self.epoch, self.config.epochs)
                    break
                raise ValueError("the training data ended before its first batch" if exhausted else "the training data yielded no batches")
            seconds = time.perf_counter() - started
            # loss and samples summed over the ranks together: the ranks' last batches of a drained stream differ in size
            loss_sum, samples_all = sum_across_processes(torch.stack([total_loss, total_loss.new_tensor(samples)]), self.process).tolist()
            train_loss = loss_sum / samples_all
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"the training loss became {train_loss} in epoch {self.epoch}; lower the learning rate, clip gradients or check the "
                    "data"
                )
            record = {
                "epoch": self.epoch,
                "train_loss": train_loss,
                "learning_rate": learning_rate,
                "seconds": seconds,
                "samples_per_second": samples_all / seconds,
            }
            summary = getattr(train, "summary", None)  # e.g. the online stream's reservoir figures
            if callable(summary):
                record.update(summary())
            if validation is not None:
                record.update({f"validation_{k}": v for k, v in self.evaluate(validation).items() if k != "l2_per_channel"})
            self.history.append(record)
            self.epoch += 1
            self._save_data_state(train)
            if self.process.is_main:
                if metrics_log is not None:
                    metrics_log.write(record)
                if self.checkpoint_path is not None:
                    save_checkpoint(self.checkpoint_path, self.state_dict())
                log.info(", ".join(f"{k} {log_value(v)}" for k, v in record.items()))
            if exhausted:
                log.info("the training data ended after epoch %d of %d", self.epoch, self.config.epochs)
                break
        return self.history

    def _set_rate(self, batch: int, batches: int) -> float:
        """Sets the optimiser's rate (and a one-cycle schedule's momentum) for this epoch's ``batch`` of ``batches``; returns the rate."""
        rate = self.config.learning_rate * self.schedule.factor(self.epoch, batch, batches)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
            if self.schedule.per_batch and "betas" in group:
                group["betas"] = (self.schedule.momentum(self.epoch, batch, batches), group["betas"][1])
        return rate

    def _batches_per_epoch(self, train: Iterable) -> int:
        """Returns ``len(train)`` when the schedule changes within an epoch (1 otherwise); ValueError if ``train`` has no length."""
        if not self.schedule.per_batch:
            return 1
        try:
            return max(1, len(train))  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(
                f"trainer.schedule = {self.config.schedule!r} sets the rate per batch and needs training data of known length (len()); "
                f"{type(train).__name__} has none: use another schedule"
            ) from None

    def _save_data_state(self, train: Iterable) -> None:
        """Saves ``train.state_dict()`` of this process for the epoch just ended, and removes what no checkpoint can need any more.

        Every process meets the others after writing, before rank 0 writes the checkpoint: so the
        checkpoint of epoch ``e`` is written only once every process's state of epoch ``e`` is, and
        each process's files before ``e - 1`` (the checkpoint on disk until rank 0 replaces it) can go.
        """
        state = getattr(train, "state_dict", None)
        if self.run_dir is None or not callable(state):
            return
        save_checkpoint(data_state_path(self.run_dir, self.epoch, self.process.rank), state())
        barrier(self.process)
        for epoch, rank, old in data_state_files(self.run_dir):
            if rank == self.process.rank and epoch < self.epoch - 1:
                old.unlink(missing_ok=True)
        for torn in (self.run_dir / DATA_STATE).glob(f".epoch-*-rank-{self.process.rank}.pt.*.tmp"):  # a write a kill interrupted
            torn.unlink(missing_ok=True)

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor, params: torch.Tensor | None, loss_fn: Loss) -> torch.Tensor:
        """One optimiser step on one batch; returns the loss (a device tensor, not synchronised).

        Without an objective (none given, and ``fit`` not yet run) the batch is a plain pair and trains ``OneStep``.

        Args:
            inputs: ``[B, C_in, *S]`` (or the objective's windows ``[B, k, C, *S]``) on the Trainer's device.
            targets: ``[B, C_out, *S]`` (or ``[B, m, C, *S]``) on the Trainer's device.
            params: ``[B, P]`` or ``None``.
            loss_fn: ``loss_fn(prediction, target) -> []`` (``make_loss``).

        Returns:
            The batch's loss, a 0-d tensor on the device.
        """
        objective = self.objective_for((inputs, targets))
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            loss = objective.loss(self.network, inputs, targets, params, loss_fn, self.epoch)
        self.scaler.scale(loss).backward()
        if self.config.gradient_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.gradient_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    @torch.no_grad()
    def evaluate(self, batches: Iterable) -> dict:
        """Returns the relative L2 and H1 errors over ``batches`` (mean over samples), and the L2 per output channel.

        Predictions and targets are mapped by ``denormalize`` first, if given; a target channel that is
        zero counts its absolute L2 error (``pdekit.rollout.relative_error``). Under DDP the means run
        over every process's batches.

        Args:
            batches: ``(inputs, targets)`` pairs or ``Window`` batches, as for ``fit``.

        Returns:
            ``{"l2": float, "h1": float, "l2_per_channel": [float] * C}``.

        Raises:
            ValueError: if ``batches`` yields none.
        """
        self.network.eval()
        l2_sum: torch.Tensor | None = None
        h1_sum, count, h1 = torch.zeros((), device=self.device, dtype=torch.float64), 0, None
        for batch in batches:
            inputs, targets, params = self._on_device(batch)
            prediction, targets = self.objective_for(batch).prediction(self.model, inputs, targets, params)
            if self.denormalize is not None:
                prediction, targets = self.denormalize(prediction), self.denormalize(targets)
            per_sample = relative_l2_per_sample(prediction.float(), targets.float()).double()  # [B, C]
            l2_sum = per_sample.sum(0) if l2_sum is None else l2_sum + per_sample.sum(0)
            h1 = h1 or relative_h1(prediction.ndim - 2)
            h1_sum += h1(prediction.float(), targets.float()).double() * len(inputs)
            count += len(inputs)
        if l2_sum is None or count == 0:
            raise ValueError("the validation data yielded no batches")
        totals = sum_across_processes(
            torch.cat([l2_sum, h1_sum[None], torch.tensor([float(count)], device=self.device, dtype=torch.float64)]), self.process
        )
        per_channel = totals[:-2] / totals[-1]
        return {"l2": per_channel.mean().item(), "h1": (totals[-2] / totals[-1]).item(), "l2_per_channel": per_channel.tolist()}
