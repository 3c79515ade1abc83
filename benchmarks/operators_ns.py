"""The five operators on pdekit-generated 2D Navier-Stokes at a fixed CPU budget each: error, size, speed.

Data: the FNO paper's setting (Li et al., ICLR 2021): vorticity at nu = 1e-3 on the unit torus,
forcing 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y)), 64², states at t = 1 .. 50; windows of 10 states in,
the next one out. pdekit's ``fno_navier_stokes`` recipe, solved here directly at 64² (at nu = 1e-3 this
matches the 256² solve truncated to 64² to ~1e-9; see docs/recipes.md) to keep generation short on a CPU.

Each model trains through pdekit's Trainer (AdamW, lr 1e-3, cosine, relative L2, batch 16, normalised
data) for as many epochs as fit its budget (measured from a first epoch), or for ``--epochs`` each,
and is tested on held-out members: one-step relative L2 in physical units.

``--equal-modes K`` sets every spectral model to the same Fourier modes per axis: F-FNO keeps modes
``0 .. K-1`` of each axis's real FFT, neuraloperator's FNO and TFNO count ``n_modes`` over both signs
(``2K``: modes ``-K .. K-1`` on the first axis, ``0 .. K`` on the last). With ``--epochs`` this is the
F-FNO paper's comparison at equal depth (4 layers each) and training, at a reduced size:

    python benchmarks/operators_ns.py [--members 40] [--budget 150]
    python benchmarks/operators_ns.py --models fno ffno --shape 32 --equal-modes 12 --epochs 100
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
    parser.add_argument("--epochs", type=int, default=None, help="epochs per model (instead of --budget)")
    parser.add_argument("--shape", type=int, default=64, help="grid points per axis, solved and stored")
    parser.add_argument("--equal-modes", type=int, default=None, help="the Fourier modes per axis of every spectral model")
    args = parser.parse_args()
    for name in ("epochs", "equal_modes"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    models = {name: dict(settings) for name, settings in MODELS.items()}
    if args.equal_modes is not None:
        models["ffno"]["modes"] = args.equal_modes
        for name in ("fno", "tfno"):
            models[name]["modes"] = 2 * args.equal_modes
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "ns.zarr"
        started = time.perf_counter()
        grid = (args.shape, args.shape)
        recipe = fno_navier_stokes(1e-3).with_overrides(shape=grid, stored_shape=grid, members=args.members, batch_size=20)
        generate(recipe, store, device="cpu", progress=False)
        print(f"generated {args.members} members in {time.perf_counter() - started:.0f} s", flush=True)
        data = DataConfig(store=str(store), input_steps=10, target_steps=1, batch_size=16, validation_fraction=0.2)
        for name in args.models:
            base = ExperimentConfig(
                data=data, model=ModelConfig(name, models[name]), trainer=TrainerConfig(epochs=1, learning_rate=1e-3, progress=False)
            )
            if args.epochs is None:
                probe = train(base, Path(folder) / f"{name}-probe")
                epochs = max(1, math.floor(args.budget / probe.history[0]["seconds"]))
            else:
                epochs = args.epochs
            full = ExperimentConfig(data=data, model=base.model, trainer=TrainerConfig(epochs=epochs, learning_rate=1e-3, progress=False))
            trainer = train(full, Path(folder) / name)
            result = evaluate(Path(folder) / name)
            parameters = sum(p.numel() for p in trainer.model.parameters())
            seconds = statistics.median([r["seconds"] for r in trainer.history])
            rows.append((name, result.l2, parameters, seconds, epochs))
            losses = [r["train_loss"] for r in trainer.history if "train_loss" in r]
            if losses:
                tenth = max(1, len(losses) // 10)
                print(f"{name:11s} training loss, first and last tenth of the epochs: {losses[tenth - 1]:.4f} -> {losses[-1]:.4f}")
            print(
                f"{name:11s} test relative L2 {result.l2:.4f}  {parameters:>9,} parameters  {seconds:6.1f} s/epoch  {epochs} epochs",
                flush=True,
            )
    print(f"\n{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}, {date.today()}")
    budget = f"epochs in {args.budget:.0f} s" if args.epochs is None else "epochs"
    print(f"{args.members} members at {args.shape}², modes {args.equal_modes or 'per model'}")
    print(f"| model | test relative L2 (one step) | parameters | s / epoch | {budget} |\n|---|---|---|---|---|")
    for name, error, parameters, seconds, epochs in rows:
        print(f"| {name} | {error:.4f} | {parameters:,} | {seconds:.1f} | {epochs} |")
    errors = {name: error for name, error, *_ in rows}
    if "fno" in errors and "ffno" in errors:
        print(f"F-FNO / FNO error: {errors['ffno'] / errors['fno']:.2f} (Tran et al., ICLR 2023: 0.17, '83% lower', at their size)")


if __name__ == "__main__":
    main()
