"""``pdekit quickstart``: the whole surrogate loop on a small Navier-Stokes problem, end to end.

Generates a small ensemble of the FNO paper's Navier-Stokes flow (nu = 1e-3, 64², t = 0 .. T every
0.5) into a local Zarr store, trains an FNO on it, rolls the FNO out against the held-out members'
solver trajectories, prints a results table and writes figures. A few minutes on 2 CPU cores; on a
GPU when there is one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from pdekit.data import generate, validate
from pdekit.data.recipes import fno_navier_stokes
from pdekit.devices import Device, resolve_device
from pdekit.runs import DataConfig, ExperimentConfig, ModelConfig, evaluate, evaluate_rollout, train
from pdekit.training import TrainerConfig
from pdekit.viz import rollout_figures


@dataclass(frozen=True)
class QuickstartConfig:
    """Sizes of the quickstart; the defaults take a few minutes on 2 CPU cores.

    The rollout starts at ``spin_up``: the random initial field's small scales decay in the first
    time units, which a surrogate trained on the whole trajectory fits worst. ``fields`` chooses what
    is recorded and learnt: ``("vorticity", "velocity")`` trains on three channels.
    """

    members: int = 40
    horizon: float = 10.0
    epochs: int = 10
    spin_up: float = 2.0
    width: int = 24
    modes: int = 12
    batch_size: int = 16
    fields: tuple[str, ...] = ("vorticity",)

    def __post_init__(self) -> None:
        for name in ("members", "epochs", "width", "modes", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"quickstart {name} must be >= 1; got {getattr(self, name)}")
        if not 1.0 <= self.horizon < math.inf or abs(self.horizon / 0.5 - round(self.horizon / 0.5)) > 1e-9:
            raise ValueError(
                f"quickstart horizon must be a finite multiple of the stored step 0.5, at least 1 (two stored steps); got {self.horizon}"
            )
        if not 0 <= self.spin_up < math.inf:
            raise ValueError(f"quickstart spin_up must be non-negative and finite; got {self.spin_up}")


def run_quickstart(
    out: str | Path, config: QuickstartConfig = QuickstartConfig(), *, device: Device | None = None, progress: bool = True
) -> dict:
    """Runs generate -> train -> roll out -> report into ``out``; returns the figures and the headline numbers."""
    out = Path(out)
    store, run = out / "navier_stokes.zarr", out / "fno"
    device = resolve_device(device)
    steps = round(config.horizon / 0.5)
    recipe = fno_navier_stokes(1e-3).with_overrides(
        shape=(64, 64),
        stored_shape=(64, 64),
        times=tuple(0.5 * n for n in range(1, steps + 1)),
        members=config.members,
        batch_size=min(config.members, 20),
        fields=config.fields,
    )
    started = time.perf_counter()
    print(
        f"[1/4] generating {config.members} Navier-Stokes members (nu = 1e-3, 64², t = 0 .. {config.horizon:g}; "
        f"{', '.join(config.fields)}) into {store}"
    )
    summary = generate(recipe, store, resume=store.exists(), device=device, progress=progress)
    report = validate(store)
    if not report.ok:
        raise RuntimeError(f"{store} failed validation: {report}")
    generated = time.perf_counter() - started

    print(f"[2/4] training an FNO on one-step windows (t -> t + 0.5) into {run}")
    experiment = ExperimentConfig(
        data=DataConfig(store=str(store), input_steps=1, target_steps=1, batch_size=config.batch_size, validation_fraction=0.2),
        model=ModelConfig("fno", {"modes": config.modes, "width": config.width}),
        trainer=TrainerConfig(epochs=config.epochs, learning_rate=2e-3, progress=progress),
    )
    started = time.perf_counter()
    trainer = train(experiment, run, resume=(run / "checkpoint.pt").exists(), device=device)
    trained = time.perf_counter() - started

    start = config.spin_up if config.spin_up < config.horizon else 0.0
    print(f"[3/4] evaluating: one step, and the trajectory rolled out from t = {start:g} (after the initial field's spin-up)")
    one_step = evaluate(run, device=device)
    rolled = evaluate_rollout(run, start_time=start, device=device)

    print("[4/4] writing figures")
    figures = rollout_figures(rolled, out / "figures")
    rows = [
        ("ensemble", f"{summary.completed} members, {generated:.0f} s to generate"),
        ("training", f"{trainer.epoch} epochs, {trained:.0f} s, validation relative L2 {trainer.history[-1]['validation_l2']:.4f}"),
        ("one-step error", f"relative L2 {one_step.l2:.4f} on {one_step.members} held-out members"),
    ]
    for fraction in (0.25, 0.5, 1.0):
        n = max(0, round(fraction * len(rolled.times)) - 1)
        rows.append((f"rollout error t = {rolled.times[n]:g}", f"relative L2 {rolled.l2_per_time[n]:.4f}"))
    rows.append(("correlation time", f"{rolled.correlation_time:.2f} (time units with correlation >= 0.8)"))
    width = max(len(name) for name, _ in rows)
    print("\n" + "\n".join(f"  {name:<{width}}  {value}" for name, value in rows))
    print("\nfigures:\n" + "\n".join(f"  {path}" for path in figures))
    return {"figures": figures, "one_step_l2": one_step.l2, "rollout_l2": rolled.l2_per_time, "correlation_time": rolled.correlation_time}
