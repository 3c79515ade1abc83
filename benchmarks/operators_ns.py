"""The five operators on pdekit-generated 2D Navier-Stokes at a fixed CPU budget each: error, size, speed.

Data: the FNO paper's setting (Li et al., ICLR 2021): vorticity at nu = 1e-3 on the unit torus,
forcing 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)), 64², states at t = 1 .. 50; windows of 10 states in,
the next one out. pdekit's ``fno_navier_stokes`` recipe, solved here directly at 64² (at nu = 1e-3 this
matches the 256² solve truncated to 64² to ~1e-9; see docs/recipes.md) to keep generation short on a CPU.

Each model trains through pdekit's Trainer (AdamW, lr 1e-3, cosine, relative L2, batch 16, normalised
data) for as many epochs as fit its budget (measured from a first epoch), and is tested on held-out
members: one-step relative L2 in physical units.

    python benchmarks/operators_ns.py [--members 40] [--budget 150]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from pdekit.data import generate
from pdekit.data.recipes import fno_navier_stokes
from pdekit.runs import DataConfig, ExperimentConfig, ModelConfig, evaluate, train
from pdekit.training import TrainerConfig

MODELS = {
    "fno": dict(modes=12, width=32),
    "tfno": dict(modes=12, width=32),
    "ffno": dict(modes=16, width=32, layers=4),
    "galerkin": dict(width=32, layers=3, regressor_modes=12),
    "factformer": dict(width=32, layers=3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per model")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "ns.zarr"
        started = time.perf_counter()
        recipe = fno_navier_stokes(1e-3).with_overrides(shape=(64, 64), stored_shape=(64, 64), members=args.members, batch_size=20)
        generate(recipe, store, device="cpu", progress=False)
        print(f"generated {args.members} members in {time.perf_counter() - started:.0f} s", flush=True)
        data = DataConfig(store=str(store), input_steps=10, target_steps=1, batch_size=16, validation_fraction=0.2)
        for name in args.models:
            base = ExperimentConfig(
                data=data, model=ModelConfig(name, MODELS[name]), trainer=TrainerConfig(epochs=1, learning_rate=1e-3, progress=False)
            )
            probe = train(base, Path(folder) / f"{name}-probe")
            epoch_seconds = probe.history[0]["seconds"]
            epochs = max(1, math.floor(args.budget / epoch_seconds))
            full = ExperimentConfig(data=data, model=base.model, trainer=TrainerConfig(epochs=epochs, learning_rate=1e-3, progress=False))
            trainer = train(full, Path(folder) / name)
            result = evaluate(Path(folder) / name)
            parameters = sum(p.numel() for p in trainer.model.parameters())
            seconds = statistics.median([r["seconds"] for r in trainer.history])
            rows.append((name, result.l2, parameters, seconds, epochs))
            print(
                f"{name:11s} test relative L2 {result.l2:.4f}  {parameters:>9,} parameters  {seconds:6.1f} s/epoch  {epochs} epochs",
                flush=True,
            )
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}")
    print(f"| model | test relative L2 (one step) | parameters | s / epoch | epochs in {args.budget:.0f} s |\n|---|---|---|---|---|")
    for name, error, parameters, seconds, epochs in rows:
        print(f"| {name} | {error:.4f} | {parameters:,} | {seconds:.1f} | {epochs} |")


if __name__ == "__main__":
    main()
