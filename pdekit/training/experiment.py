"""A training run from a Zarr ensemble: its configuration (TOML or YAML), training, and evaluation per output time."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pdekit.data import ChunkLocalSampler, FieldStatistics, StoreError, Windows, compute_statistics, load_statistics, open_store
from pdekit.data.store import channel_names, field_channels, member_status
from pdekit.models import build_model, model_from_spec
from pdekit.online.stream import OnlineConfig
from pdekit.rollout import correlation_time, relative_l2_per_field, rollout
from pdekit.rollout.objectives import RolloutObjective, RolloutTraining
from pdekit.training.checkpoint import load_checkpoint
from pdekit.training.distributed import init_from_environment
from pdekit.training.trainer import CHECKPOINT, Trainer, TrainerConfig

CONFIG = "config.toml"
EVALUATION = "evaluation.json"


@dataclass(frozen=True)
class DataConfig:
    """Which windows of which store: ``input_steps`` states in, the next ``target_steps`` out.

    The last ``validation_fraction`` of the completed members (by index; members are independent
    draws) are held out for validation and for ``evaluate``.
    """

    store: str = ""
    input_steps: int = 1
    target_steps: int = 1
    stride: int = 1
    validation_fraction: float = 0.1
    batch_size: int = 16
    normalize: bool = True
    members_per_read: int = 4
    workers: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """The model's name in ``pdekit.models.MODELS`` and the settings that override its config's defaults."""

    name: str = "fno"
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs; ``config.toml`` in the run directory holds it resolved."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    trainer: TrainerConfig = TrainerConfig()
    rollout: RolloutTraining = RolloutTraining()
    online: OnlineConfig = OnlineConfig()
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict, source: str = "configuration") -> ExperimentConfig:
        """Returns the config described by ``values`` (sections ``data``, ``model``, ``trainer``, ``rollout``, ``online``); unknown keys are errors."""
        sections = {"data": DataConfig, "model": ModelConfig, "trainer": TrainerConfig, "rollout": RolloutTraining, "online": OnlineConfig}
        unknown = set(values) - set(sections) - {"seed"}
        if unknown:
            raise ValueError(f"{source}: unknown section or key {sorted(unknown)}; expected {sorted(sections)} and seed")
        built = {}
        for name, section_cls in sections.items():
            given = values.get(name, {})
            known = {f.name for f in dataclasses.fields(section_cls)}
            if set(given) - known:
                raise ValueError(f"{source}: [{name}] has no key {sorted(set(given) - known)}; its keys are {sorted(known)}")
            built[name] = section_cls(**given)
        return cls(**built, seed=int(values.get("seed", 0)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def with_overrides(self, **sections: dict) -> ExperimentConfig:
        """Returns a copy with ``sections={"trainer": {"epochs": 5}, ...}`` replacing single keys (``None`` values are ignored)."""
        values = self.to_dict()
        for name, updates in sections.items():
            if name == "seed":
                values["seed"] = updates if updates is not None else values["seed"]
                continue
            values[name].update({k: v for k, v in updates.items() if v is not None})
        return ExperimentConfig.from_dict(values)


def load_config(path: str | Path) -> ExperimentConfig:
    """Reads an ``ExperimentConfig`` from a TOML (``.toml``) or YAML (``.yaml``, ``.yml``) file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no configuration file {path}")
    if path.suffix == ".toml":
        values = tomllib.loads(path.read_text())
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        values = yaml.safe_load(path.read_text()) or {}
    else:
        raise ValueError(f"{path}: configuration files are .toml, .yaml or .yml")
    return ExperimentConfig.from_dict(values, source=str(path))


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Writes ``config`` as TOML, the form ``load_config`` and ``pdekit train --config`` read back."""
    import tomli_w

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(tomli_w.dumps(config.to_dict()))


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


def statistics_of(config: DataConfig) -> FieldStatistics | None:
    """Returns the store's normalisation statistics, computing (and saving) them on first use; ``None`` without normalisation."""
    if not config.normalize:
        return None
    try:
        return load_statistics(config.store)
    except StoreError:  # none saved yet
        return compute_statistics(config.store)


def windows(config: DataConfig, members: list[int] | None, statistics: FieldStatistics | None, store: str | None = None) -> Windows:
    return Windows(
        store or config.store, config.input_steps, config.target_steps, config.stride,
        members=members, normalize=statistics or False, members_per_read=config.members_per_read,
    )


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


def _table(times: list[float], columns: dict[str, list[float]]) -> str:
    header = "".join(f"  {name:>12}" for name in columns)
    rows = "\n".join(f"  {t:10.4g}" + "".join(f"  {values[n]:12.4g}" for values in columns.values()) for n, t in enumerate(times))
    return f"        time{header}\n{rows}"


@dataclass
class Evaluation:
    """Test errors of a trained run: overall, per field, per channel, and per output time (means over members).

    ``l2`` and ``l2_per_time`` are means over the fields of each field's relative L2 (a vector
    field's error is that of the whole vector); ``fields`` and ``channels`` break ``l2`` down.
    """

    store: str
    members: int
    l2: float
    times: list[float]
    l2_per_time: list[float]
    fields: dict[str, float] = field(default_factory=dict)
    channels: dict[str, float] = field(default_factory=dict)
    fields_per_time: dict[str, list[float]] = field(default_factory=dict)

    def __str__(self) -> str:
        columns = {"relative L2": self.l2_per_time, **(self.fields_per_time if len(self.fields_per_time) > 1 else {})}
        parts = ", ".join(f"{k} {v:.4g}" for k, v in self.channels.items())
        return f"{self.store}: {self.members} members, relative L2 {self.l2:.4g} (per channel: {parts})\n{_table(self.times, columns)}"


@torch.no_grad()
def evaluate(run_dir: str | Path, store: str | None = None, *, device=None, batch_size: int | None = None) -> Evaluation:
    """Returns the run's one-step relative L2 errors on ``store`` (default: its own validation members), per field, channel and target time.

    The model and the normalisation come from the run (``config.toml``, ``checkpoint.pt``); another
    store is normalised with the training store's statistics. Errors are in physical units. The
    result is also written to ``run_dir/evaluation.json``.
    """
    run_dir = Path(run_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config, stepper = load_run(run_dir, device)
    statistics = statistics_of(config.data)
    members = None if store else validation_members(config)
    test = windows(config.data, members, statistics, store=store)
    group = open_store(store or config.data.store)
    fields = field_channels(group)
    per_channel = [(name, 1) for name in channel_names(group)]
    field_errors, channel_errors = [], []
    for inputs, targets, _, params in DataLoader(test, batch_size=batch_size or config.data.batch_size):
        prediction, truth = stepper(inputs.to(device), test.dt, params.to(device)), targets[:, 0].to(device)
        if statistics is not None:
            prediction, truth = statistics.denormalize(prediction), statistics.denormalize(truth)
        prediction, truth = prediction.unsqueeze(1).double(), truth.unsqueeze(1).double()  # one step: [B, 1, C, *S]
        field_errors.append(torch.stack(list(relative_l2_per_field(prediction, truth, fields).values()), -1)[:, 0].cpu())
        channel_errors.append(torch.stack(list(relative_l2_per_field(prediction, truth, per_channel).values()), -1)[:, 0].cpu())
    # windows are member-major: [members, starts, fields or channels]
    by_field = torch.cat(field_errors).view(len(test.members), len(test.starts), len(fields))
    by_channel = torch.cat(channel_errors).view(len(test.members), len(test.starts), len(per_channel))
    times = np.asarray(group["time"][:])
    target_times = [float(times[s + config.data.input_steps]) for s in test.starts]
    per_time = by_field.mean(0)  # [starts, fields]
    result = Evaluation(
        store=str(store or config.data.store), members=len(test.members), l2=per_time.mean().item(),
        times=target_times, l2_per_time=per_time.mean(1).tolist(),
        fields={name: by_field[..., i].mean().item() for i, (name, _) in enumerate(fields)},
        channels={name: by_channel[..., i].mean().item() for i, (name, _) in enumerate(per_channel)},
        fields_per_time={name: per_time[:, i].tolist() for i, (name, _) in enumerate(fields)},
    )
    (run_dir / EVALUATION).write_text(json.dumps(dataclasses.asdict(result), indent=1))
    return result


@dataclass
class RolloutEvaluation:
    """A rollout from each test member's first states to the end of its stored trajectory, against the stored states.

    ``l2_per_time`` is the mean over fields of each field's relative L2 (per field in
    ``fields_per_time``); ``correlation_time`` is the shortest of the fields' (``fields_correlation_time``):
    the time until the first field decorrelates. ``prediction`` and ``reference`` are ``[M, T, C, *S]``.
    """

    store: str
    members: int
    dt: float
    times: list[float]
    l2_per_time: list[float]
    correlation_time: float
    prediction: torch.Tensor = field(repr=False)
    reference: torch.Tensor = field(repr=False)
    fields_per_time: dict[str, list[float]] = field(default_factory=dict)
    fields_correlation_time: dict[str, float] = field(default_factory=dict)
    channels: tuple[str, ...] = ()

    def __str__(self) -> str:
        columns = {"relative L2": self.l2_per_time, **(self.fields_per_time if len(self.fields_per_time) > 1 else {})}
        return (
            f"{self.store}: rollout of {self.members} members with dt={self.dt:g}; correlation time (>= 0.8) {self.correlation_time:.4g}\n"
            f"{_table(self.times, columns)}"
        )


@torch.no_grad()
def evaluate_rollout(
    run_dir: str | Path, store: str | None = None, *, dt: float | None = None, steps: int | None = None, start_time: float = 0.0, device=None
) -> RolloutEvaluation:
    """Rolls the run's surrogate out from ``input_steps`` states of every test member and compares it with the stored trajectory.

    The rollout starts from the first stored states at or after ``start_time`` (e.g. past a spin-up).
    ``dt`` defaults to the store's step; a derivative-mode surrogate may take ``store dt / r`` for an
    integer ``r`` (compared every ``r``-th step). ``steps`` (of the store's dt) defaults to the whole
    trajectory. Errors are in physical units, per field; the result is also written to ``run_dir/rollout.json``.
    """
    run_dir = Path(run_dir)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config, stepper = load_run(run_dir, device)
    statistics = statistics_of(config.data)
    members = None if store else validation_members(config)
    k = config.data.input_steps
    full = Windows(store or config.data.store, k, 1, members=members, normalize=statistics or False)
    stored_dt = full.dt
    dt = dt or stored_dt
    ratio = round(stored_dt / dt)
    if ratio < 1 or abs(ratio * dt - stored_dt) > 1e-9 * stored_dt:
        raise ValueError(f"rollout dt={dt} must divide the stored step {stored_dt} by an integer")
    group = open_store(store or config.data.store)
    all_times = np.asarray(group["time"][:])
    first = int(np.searchsorted(all_times, start_time - 1e-9 * max(1.0, abs(start_time))))
    available = full.n_times - k - first
    if available < 1:
        raise ValueError(f"start_time={start_time} leaves no stored states to roll out to (last time {all_times[-1]})")
    steps = min(steps or available, available)
    trajectories = torch.stack([full.trajectory(p) for p in range(len(full.members))])  # [M, T, C, *S]
    params = full.params.to(device)
    history = trajectories[:, first : first + k].to(device)
    prediction = rollout(stepper, history, steps * ratio, dt, params)[:, ratio - 1 :: ratio]
    reference = trajectories[:, first + k : first + k + steps].to(device)
    if statistics is not None:
        prediction, reference = statistics.denormalize(prediction), statistics.denormalize(reference)
    times = all_times[first + k : first + k + steps]
    fields = field_channels(group)
    per_field = {name: errors.mean(0) for name, errors in relative_l2_per_field(prediction, reference, fields).items()}
    correlation, channel = {}, 0
    for name, channels in fields:
        part = slice(channel, channel + channels)
        correlation[name] = correlation_time(prediction[:, :, part], reference[:, :, part]).double().mean().item() * stored_dt
        channel += channels
    result = RolloutEvaluation(
        store=str(store or config.data.store), members=len(full.members), dt=dt, times=times.tolist(),
        l2_per_time=torch.stack(list(per_field.values())).mean(0).tolist(), correlation_time=min(correlation.values()),
        prediction=prediction.cpu(), reference=reference.cpu(),
        fields_per_time={name: e.tolist() for name, e in per_field.items()}, fields_correlation_time=correlation, channels=full.channels,
    )
    summary = {
        name: getattr(result, name)
        for name in ("store", "members", "dt", "times", "l2_per_time", "correlation_time", "fields_per_time", "fields_correlation_time", "channels")
    }
    (run_dir / "rollout.json").write_text(json.dumps(summary, indent=1))
    return result
