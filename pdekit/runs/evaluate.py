"""Evaluating a trained run: one-step errors per field, channel and time (``pdekit evaluate``), and rollouts (``pdekit rollout``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pdekit.data import FieldStatistics, Windows, open_store
from pdekit.data.store import channel_names, field_channels, values
from pdekit.devices import Device, resolve_device
from pdekit.io.formats import require_zarr_store
from pdekit.rollout import correlation_time, relative_l2_per_field, rollout
from pdekit.runs.config import ExperimentConfig
from pdekit.runs.data import validation_members, windows
from pdekit.runs.integrity import check_store, load_run_data, trained_statistics, write_atomically
from pdekit.runs.train import load_run

EVALUATION = "evaluation.json"
"""The file in a run directory that ``evaluate`` writes its result to."""


def evaluation_data(run_dir: Path, config: ExperimentConfig, store) -> tuple[FieldStatistics | None, list[int] | None]:
    """Returns the statistics and members an evaluation of the run on ``store`` (None: its own) uses; reads the run, never writes a store.

    The statistics are those the run trained with (``integrity.trained_statistics``). Its own store
    is checked against the run's fingerprint and evaluated on the run's recorded validation members;
    another store on all its completed members, and it must hold the channels the run trained on.
    """
    statistics = trained_statistics(run_dir, config)
    data = load_run_data(run_dir)
    if store is not None:
        channels = channel_names(open_store(store))
        if statistics is not None and statistics.channels and tuple(statistics.channels) != tuple(channels):
            raise ValueError(f"{store} holds channels {list(channels)}; the run {run_dir} trained on {list(statistics.channels)}")
        return statistics, None
    if data is None:  # a run from before data.json: its split, recomputed
        return statistics, validation_members(config)
    check_store(run_dir, data, config.data.store)
    return statistics, data.validation_members


def _table(times: list[float], columns: dict[str, list[float]]) -> str:
    header = "".join(f"  {name:>12}" for name in columns)
    rows = "\n".join(f"  {t:10.4g}" + "".join(f"  {values[n]:12.4g}" for values in columns.values()) for n, t in enumerate(times))
    return f"        time{header}\n{rows}"


@dataclass
class Evaluation:
    """Test errors of a trained run: overall, per field, per channel, and per output time (means over members).

    ``l2`` and ``l2_per_time`` are means over the fields of each field's relative L2 (a vector
    field's error is that of the whole vector); ``fields`` and ``channels`` break ``l2`` down.

    Attributes:
        store: the store evaluated on.
        members: how many members.
        l2: the mean relative L2 over members, target times and fields.
        times: the target times.
        l2_per_time: ``l2`` at each target time.
        fields: ``l2`` per field.
        channels: ``l2`` per channel.
        fields_per_time: ``l2_per_time`` per field.
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
def evaluate(run_dir: str | Path, store: str | None = None, *, device: Device | None = None, batch_size: int | None = None) -> Evaluation:
    """Returns the run's one-step relative L2 errors on ``store`` (default: its own validation members), per field, channel and target time.

    The model and the normalisation come from the run (``config.toml``, ``checkpoint.pt``,
    ``normalization.json``: the statistics it trained with, also for another store); its own store is
    the one it recorded (``data.json``), found by absolute path from any working directory, and
    refused if another ensemble is there now (``evaluation_data``). No store is written. Errors are in
    physical units. The result is also written to ``run_dir/evaluation.json``.

    Args:
        run_dir: the trained run's directory.
        store: another store to evaluate on (all its completed members); None for the run's own
            validation members.
        device: where the model runs; None for ``default_device()``.
        batch_size: windows per batch; None for the run's ``data.batch_size``.

    Returns:
        The errors, overall and per field, channel and target time.

    Raises:
        ValueError: the run's store is not the ensemble it trained on, ``store`` holds other
            channels or is HDF5 data, or the run directory is not a pdekit run.
    """
    run_dir = Path(run_dir)
    device = resolve_device(device)
    config, stepper = load_run(run_dir, device)
    if store is not None:
        require_zarr_store(store)
    statistics, members = evaluation_data(run_dir, config, store)
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
    times = values(group, "time")
    target_times = [float(times[s + config.data.input_steps]) for s in test.starts]
    per_time = by_field.mean(0)  # [starts, fields]
    result = Evaluation(
        store=str(store or config.data.store),
        members=len(test.members),
        l2=per_time.mean().item(),
        times=target_times,
        l2_per_time=per_time.mean(1).tolist(),
        fields={name: by_field[..., i].mean().item() for i, (name, _) in enumerate(fields)},
        channels={name: by_channel[..., i].mean().item() for i, (name, _) in enumerate(per_channel)},
        fields_per_time={name: per_time[:, i].tolist() for i, (name, _) in enumerate(fields)},
    )
    write_atomically(run_dir / EVALUATION, json.dumps(dataclasses.asdict(result), indent=1))
    return result


@dataclass
class RolloutEvaluation:
    """A rollout from each test member's first states to the end of its stored trajectory, against the stored states.

    ``l2_per_time`` is the mean over fields of each field's relative L2 (per field in
    ``fields_per_time``); ``correlation_time`` is the shortest of the fields' (``fields_correlation_time``):
    the time until the first field decorrelates. ``prediction`` and ``reference`` are ``[M, T, C, *S]``.

    Attributes:
        store: the store rolled out on.
        members: how many members.
        dt: the rollout's step.
        times: the compared times.
        l2_per_time: the mean over members and fields of the relative L2 at each time.
        correlation_time: the time until the first field's correlation drops below 0.8.
        prediction: the rollout at ``times``, ``[M, T, C, *S]``, in physical units.
        reference: the stored states at ``times``, ``[M, T, C, *S]``.
        fields_per_time: ``l2_per_time`` per field.
        fields_correlation_time: each field's correlation time.
        channels: the channel names.
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
    run_dir: str | Path,
    store: str | None = None,
    *,
    dt: float | None = None,
    steps: int | None = None,
    start_time: float = 0.0,
    device: Device | None = None,
) -> RolloutEvaluation:
    """Rolls the run's surrogate out from ``input_steps`` states of every test member and compares it with the stored trajectory.

    The rollout starts from the first stored states at or after ``start_time`` (e.g. past a spin-up).
    ``dt`` defaults to the store's step; a derivative-mode surrogate may take ``store dt / r`` for an
    integer ``r`` (compared every ``r``-th step). ``steps`` (of the store's dt) defaults to the whole
    trajectory. The store, members and statistics are chosen and checked as ``evaluate`` does (``evaluation_data``).
    Errors are in physical units, per field; the result is also written to ``run_dir/rollout.json``.

    Args:
        run_dir: the trained run's directory.
        store: another store to roll out on (all its completed members); None for the run's own
            validation members.
        dt: the rollout's step; None for the store's.
        steps: the stored steps to compare; None for the whole trajectory after ``start_time``.
        start_time: the rollout starts from the first stored states at or after it.
        device: where the model runs; None for ``default_device()``.

    Returns:
        The per-time errors, correlation times, and the rollout and stored states.

    Raises:
        ValueError: ``dt`` does not divide the stored step by an integer, ``start_time`` leaves no
            states to compare, or the store is not the run's (as ``evaluate`` says).
    """
    run_dir = Path(run_dir)
    device = resolve_device(device)
    config, stepper = load_run(run_dir, device)
    statistics, members = evaluation_data(run_dir, config, store)
    k = config.data.input_steps
    full = Windows(store or config.data.store, k, 1, members=members, normalize=statistics or False)
    stored_dt = full.dt
    dt = dt or stored_dt
    ratio = round(stored_dt / dt)
    if ratio < 1 or abs(ratio * dt - stored_dt) > 1e-9 * stored_dt:
        raise ValueError(f"rollout dt={dt} must divide the stored step {stored_dt} by an integer")
    group = open_store(store or config.data.store)
    all_times = values(group, "time")
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
        store=str(store or config.data.store),
        members=len(full.members),
        dt=dt,
        times=times.tolist(),
        l2_per_time=torch.stack(list(per_field.values())).mean(0).tolist(),
        correlation_time=min(correlation.values()),
        prediction=prediction.cpu(),
        reference=reference.cpu(),
        fields_per_time={name: e.tolist() for name, e in per_field.items()},
        fields_correlation_time=correlation,
        channels=full.channels,
    )
    summary = {
        name: getattr(result, name)
        for name in (
            "store",
            "members",
            "dt",
            "times",
            "l2_per_time",
            "correlation_time",
            "fields_per_time",
            "fields_correlation_time",
            "channels",
        )
    }
    write_atomically(run_dir / "rollout.json", json.dumps(summary, indent=1))
    return result
